"""Per-step metrics kept on the device until a log interval ends, then fetched in one transfer.

Each dispatch returns metrics stacked over its K steps ([K] arrays). They stay on the device
until the interval is reported; the loop reports an interval only after queuing the next
dispatch, so the fetch overlaps device work. Every fetched value is checked for NaN/Inf, which
gives the exact first bad step at no per-step cost. Under a runs axis each value is [K, R]
(one per run; a frozen run's are NaN): the means are per run, over its finite values, and
freezing (train/runs.py), not this check, handles a run that went non-finite.
"""

import dataclasses
import warnings

import jax
import numpy as np


@dataclasses.dataclass
class NonFinite:
  step: int  # The update whose metrics were not finite (1-based: state.step after it).
  name: str
  value: float


def first_nonfinite(chunks: list[tuple[int, dict]]) -> NonFinite | None:
  """The earliest non-finite metric in fetched chunks [(first step, {name: [K]})], or None."""
  for start, metrics in chunks:
    if np.ndim(next(iter(metrics.values()))) > 1:  # Runs axis: frozen runs' NaNs are expected.
      return None
    for offset in range(len(next(iter(metrics.values())))):
      for name, values in metrics.items():
        if not np.isfinite(values[offset]):
          return NonFinite(start + offset + 1, name, float(values[offset]))
  return None


class IntervalMetrics:
  """Collects dispatch metrics; `close` ends an interval, `report` fetches the closed one."""

  def __init__(self):
    self._open = []  # [(first step, {name: device [K]})] of the current interval.
    self._closed = None  # (end step, chunks) waiting to be reported.
    self.fetched = {}  # The last reported interval's values, {name: [steps(, R)]}.

  def add(self, first_step: int, metrics: dict) -> None:
    self._open.append((first_step, metrics))

  def close(self, end_step: int) -> None:
    """Ends the current interval at `end_step`; the caller reports the previous one first."""
    assert self._closed is None, "report the closed interval before closing another"
    self._closed, self._open = (end_step, self._open), []

  @property
  def has_closed(self) -> bool:
    return self._closed is not None

  def report(self) -> tuple[int, dict, NonFinite | None]:
    """Fetches the closed interval: (end step, mean of each metric — a float, or [R] per run
    under a runs axis — first non-finite or None)."""
    end_step, chunks = self._closed
    self._closed = None
    fetched = jax.device_get(chunks)  # Blocks until the interval's last dispatch is done.
    names = sorted(fetched[0][1], key=lambda name: ("loss" not in name, name))  # Losses first.
    self.fetched = {name: np.concatenate([m[name] for _, m in fetched]) for name in names}
    means = {}
    for name, values in self.fetched.items():
      if values.ndim == 1:
        means[name] = float(np.mean(values))
      else:
        with warnings.catch_warnings():  # A run frozen all interval: NaN, without a warning.
          warnings.simplefilter("ignore", RuntimeWarning)
          means[name] = np.nanmean(values, axis=0)
    return end_step, means, first_nonfinite(fetched)

  def check_unreported(self) -> NonFinite | None:
    """First non-finite metric among all steps not yet reported (before saving a checkpoint)."""
    chunks = list(self._closed[1]) if self._closed else []
    return first_nonfinite(jax.device_get(chunks + self._open))
