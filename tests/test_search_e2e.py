"""A random search trained and scored (genimg_jax/search.py): a group of points in one program
equals its points trained one by one, a diverging point fails while the others finish (inside
a live program, and as a program whose runs all diverge), the result file and its figures, a
resumed search reads its finished groups back, and a bad range ends the CLI in one line."""

import json
import os

import numpy as np
import pytest

from genimg_jax import search as driver
from genimg_jax.reproduce import search_plots
from genimg_jax.train import runs, search
from genimg_jax.train.gan_step import GAN
from tests.conftest import make_tiny_zoo_config, run_python
from tests.test_runs import ATOL, max_diff, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
  from genimg_jax.data import embedded

  images, labels = embedded.load("train")
  return {"image": np.asarray(images[:64]), "label": np.asarray(labels[:64])}


def test_a_four_point_search_in_one_program_equals_the_points_one_by_one(digits):
  config = make_tiny_zoo_config("gan", search="learning_rate=log10uniform(-4,-3);"
                                "adam_b1=uniform(0,0.9)", search_points=4, search_seed=1)
  points = search.draw_points(config)
  groups = search.group(points, search.kinds(config, GAN.sweepable)[1])
  assert len(groups) == 1 and groups[0].points == (0, 1, 2, 3)
  many, _ = train(search.group_config(config, groups[0], points, GAN.sweepable), digits)
  assert many.alive.all()
  for i, point in enumerate(points):
    single, _ = train(search.point_config(config, point), digits)
    assert max_diff(runs.select(many, i), single) < ATOL, f"point {i}: {point}"


def test_a_diverging_point_fails_and_the_others_finish(tmp_path, capsys):
  """Search seed 0 draws n_critic 1 for points 0, 2, 3 (learning rates 2e-4, 1e30, 1e-3: one
  program in which point 2 freezes) and n_critic 2 for point 1 (1e30: a program whose only run
  diverges, NonFiniteError inside, a failed point outside)."""
  config = make_tiny_zoo_config(
      "gan", search="learning_rate=choice(1e-3,1e30);n_critic=choice(1,2)", search_points=4,
      search_seed=0, eval_num_samples=40, eval_classifier_epochs=0.02,
      eval_cache_dir=str(tmp_path / "cache"))
  points = search.draw_points(config)
  assert [(p["learning_rate"], p["n_critic"]) for p in points] == [
      (2e-4, 1), (1e30, 2), (1e30, 1), (1e-3, 1)]
  workdir = str(tmp_path / "search")
  result = driver.run_search(config, workdir)
  out = capsys.readouterr().out
  assert "run 1 (seed 0, learning_rate=1e+30) became non-finite" in out  # Group 0's run 1.
  assert "group 1: every run diverged" in out and "2 program(s)" in out
  by_point = result["points"]
  assert [p["failed"] for p in by_point] == [False, True, True, False]
  assert [p["group"] for p in by_point] == [0, 1, 0, 0]
  assert by_point[2]["runs"][0]["frozen"] and by_point[2]["runs"][0]["frozen_at"] >= 1
  assert by_point[1]["runs"][0]["frozen"]
  for p in (by_point[0], by_point[3]):
    assert np.isfinite(p["score"]) and p["runs"][0]["metrics"]["num_samples"] == 40
  assert by_point[1]["score"] is None and by_point[2]["score"] is None
  assert result["groups"][1]["program"] == {"n_critic": 2}
  with open(os.path.join(workdir, driver.RESULT)) as f:
    assert json.load(f)["points"] == json.loads(json.dumps(by_point))
  # The same command again reads the finished groups back: the same result, nothing trained.
  again = driver.run_search(config, workdir)
  assert again["points"] == by_point and "step " not in capsys.readouterr().out
  # Its figures.
  search_plots.main([os.path.join(workdir, driver.RESULT), "--out", str(tmp_path / "images")])
  for name in ("search_fid_box.png", "search_budget.png"):
    assert os.path.getsize(tmp_path / "images" / name) > 1000


def test_a_bad_range_ends_the_cli_in_one_line(tmp_path):
  for args in (["train.py", "--model", "gan"],
               ["-m", "genimg_jax.search", "--model", "lucic_ns_gan"]):
    proc = run_python([*args, "--workdir", str(tmp_path / "w"),
                       "--config.search=learning_rate=log10uniform(-2,-5)"])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lo > hi" in lines[0], proc.stderr
    assert not os.path.exists(tmp_path / "w")
