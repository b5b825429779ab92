"""IntervalMetrics: the mean of each metric over every step of an interval (dispatches of any
length), losses listed first, and the exact first step whose metric is NaN/Inf."""

import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.train import interval_metrics
from genimg_jax.train.interval_metrics import IntervalMetrics, NonFinite


def _dispatch(values_by_name):
  return {name: jnp.asarray(values, jnp.float32) for name, values in values_by_name.items()}


def test_report_is_the_mean_over_the_intervals_steps():
  metrics = IntervalMetrics()
  metrics.add(0, _dispatch({"accuracy": [1.0, 2.0, 3.0], "d_loss": [0.5, 0.5, 2.0]}))  # Steps 1-3.
  metrics.add(3, _dispatch({"accuracy": [6.0], "d_loss": [1.0]}))  # Step 4 (a clipped dispatch).
  metrics.close(4)
  assert metrics.has_closed
  metrics.add(4, _dispatch({"accuracy": [100.0], "d_loss": [100.0]}))  # The next interval.
  end, means, bad = metrics.report()
  assert not metrics.has_closed
  assert end == 4 and bad is None
  assert list(means) == ["d_loss", "accuracy"]  # Losses first.
  assert means == pytest.approx({"d_loss": 1.0, "accuracy": 3.0})  # (1+2+3+6)/4, (0.5+0.5+2+1)/4.
  metrics.close(5)
  assert metrics.report()[1] == pytest.approx({"d_loss": 100.0, "accuracy": 100.0})


def test_the_first_non_finite_step_and_metric_are_found():
  chunks = [(10, {"g_loss": np.array([1.0, 2.0]), "d_loss": np.array([1.0, 1.0])}),
            (12, {"g_loss": np.array([1.0, np.inf, np.nan]), "d_loss": np.array([1.0, 1.0, 1.0])}),
            (15, {"g_loss": np.array([np.nan]), "d_loss": np.array([np.nan])})]
  assert interval_metrics.first_nonfinite(chunks) == NonFinite(14, "g_loss", float("inf"))
  assert interval_metrics.first_nonfinite(chunks[:1]) is None
  metrics = IntervalMetrics()
  metrics.add(0, _dispatch({"loss": [1.0, 2.0]}))
  metrics.close(2)
  metrics.add(2, _dispatch({"loss": [3.0, float("nan")]}))  # Step 4, not reported yet.
  unreported = metrics.check_unreported()
  assert (unreported.step, unreported.name) == (4, "loss") and np.isnan(unreported.value)
  end, means, bad = metrics.report()
  assert (end, bad) == (2, None) and means == {"loss": 1.5}
