"""The random search's points and programs (train/search.py), explicit sweep points
(sweep_zip), its one-line refusals, and the figures of a result (reproduce/search_plots.py).
Training and scoring a search: test_search_e2e.py."""

import numpy as np
import pytest
from PIL import Image

from genimg_jax.errors import UserError
from genimg_jax.reproduce import search_plots
from genimg_jax.train import run_config, search, sweep
from genimg_jax.train.gan_step import GAN
from tests.conftest import make_tiny_zoo_config

WIDE = ("learning_rate=log10uniform(-5,-2);adam_b1=uniform(0,1);n_critic=choice(1,5);"
        "discriminator_batch_norm=choice(0,1)")  # Lucic et al.'s wide ranges.


def lucic(**overrides):
  return make_tiny_zoo_config("lucic_ns_gan", **{"search": WIDE, "search_points": 12,
                                                 **overrides})


def test_the_same_seed_draws_the_same_points_and_point_0_is_the_config():
  points = search.draw_points(lucic())
  assert points == search.draw_points(lucic())
  assert points != search.draw_points(lucic(search_seed=1))
  assert points[0] == {"learning_rate": 5e-5, "adam_b1": 0.0, "n_critic": 1,
                       "discriminator_batch_norm": True}
  assert search.draw_points(lucic(search_seed=1))[0] == points[0]
  assert len(points) == 12 and len({p["learning_rate"] for p in points}) == 12
  for p in points[1:]:
    assert 1e-5 <= p["learning_rate"] <= 1e-2 and 0 <= p["adam_b1"] < 1
    assert p["n_critic"] in (1, 5) and type(p["n_critic"]) is int
    assert type(p["discriminator_batch_norm"]) is bool


def test_the_draw_rule_is_the_documented_one():
  """Point after point, key after key: rng.uniform for (log10)uniform, rng.integers for choice."""
  rng = np.random.default_rng(7)
  want = []
  for _ in range(3):
    lr = 10 ** rng.uniform(-5, -2)
    b1 = rng.uniform(0, 1)
    n = (1, 5)[rng.integers(2)]
    bn = (0, 1)[rng.integers(2)]
    want.append({"learning_rate": lr, "adam_b1": b1, "n_critic": n,
                 "discriminator_batch_norm": bool(bn)})
  assert search.draw_points(lucic(search_seed=7, search_points=4))[1:] == want


def test_points_group_by_their_program_values_and_each_group_is_one_program():
  config = lucic()
  points = search.draw_points(config)
  per_run, program = search.kinds(config, GAN.sweepable)
  assert per_run == ("learning_rate", "adam_b1")
  assert program == ("n_critic", "discriminator_batch_norm")
  groups = search.group(points, program)
  assert groups[0].points[0] == 0 and sorted(i for g in groups for i in g.points) == list(range(12))
  for g in groups:
    single = search.group_config(config, g, points, GAN.sweepable)
    run_config.validate(single)
    assert single.search == "" and single.sweep_zip
    for key, value in g.program.items():
      assert single[key] == value and type(single[key]) is type(config[key])
    plan = sweep.plan(single)
    assert plan.size == len(g.points)
    for run, i in enumerate(g.points):  # Float values travel exactly through the sweep text.
      assert plan.points[run] == {k: points[i][k] for k in per_run}
      assert points[i]["n_critic"] == g.program["n_critic"]
    # A searched n_critic keeps the real batches of the config: 12 steps × 1 = 12 × 1 / k.
    assert single.num_steps == (12 if g.program["n_critic"] == 1 else round(12 / 5))


def test_seeds_per_point_and_a_search_of_program_keys_alone():
  config = make_tiny_zoo_config("lucic_ns_gan", search="discriminator_batch_norm=choice(0,1)",
                                search_points=5, num_runs=2, seed=3)
  points = search.draw_points(config)
  groups = search.group(points, search.kinds(config, GAN.sweepable)[1])
  single = search.group_config(config, groups[0], points, GAN.sweepable)
  plan = sweep.plan(single)  # The points' own axis: the config's learning rate, once per point.
  assert plan.size == 2 * len(groups[0].points) and plan.seeds[:4] == (3, 4, 3, 4)
  assert all(p == {"learning_rate": config.learning_rate} for p in plan.points)


def test_zipped_sweeps_are_explicit_points():
  config = make_tiny_zoo_config("gan", sweep="learning_rate=1e-4,2e-4,3e-4;adam_b1=0.1,0.2,0.3",
                                sweep_zip=True, num_runs=2)
  plan = sweep.plan(config)
  assert [p["adam_b1"] for p in plan.points] == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
  assert [p["learning_rate"] for p in plan.points][::2] == [1e-4, 2e-4, 3e-4]
  run_config.validate(config)
  config.sweep = "learning_rate=1e-4,2e-4;adam_b1=0.1"
  with pytest.raises(UserError, match="one value per point"):
    run_config.validate(config)


def test_the_new_keys_leave_every_fingerprint_as_it_was():
  config = make_tiny_zoo_config("gan")
  settings = config.to_dict()
  before = {k: v for k, v in settings.items() if k not in ("sweep_zip", *search.NEUTRAL)}
  assert run_config.fingerprint(settings) == run_config.fingerprint(before)


@pytest.mark.parametrize("text, message", [
    ("learning_rate", "malformed"),
    ("learning_rate=uniform", "malformed"),
    ("learning_rate=normal(0,1)", "not a distribution we draw"),
    ("learning_rate=uniform(1e-3,1e-4)", "lo > hi"),
    ("learning_rate=log10uniform(-2,-5)", "lo > hi"),
    ("learning_rate=uniform(1e-4)", "takes two numbers"),
    ("learning_rate=uniform(0,a)", "must be numbers"),
    ("learning_rate=uniform(0,inf)", "must be finite"),
    ("learning_rate=choice(1e-4);learning_rate=choice(1e-3)", "twice"),
    ("learnin_rate=uniform(1e-4,1e-3)", "is not a setting of model"),
    ("n_critic=uniform(1,5)", "integer: search it with choice"),
    ("n_critic=choice(1,2.5)", "takes integers"),
    ("discriminator_batch_norm=choice(0,2)", "takes 0 and 1"),
    ("loss=choice(1,2)", "not a number or a switch"),
    ("num_steps=choice(10,20)", "cannot be searched"),
    ("seed=choice(1,2)", "cannot be searched"),
    ("adam_b1=uniform(0.5,1.5)", r"search point \d+ .*adam_b1"),
    ("n_critic=choice(0,1)", r"search point \d+ .*n_critic"),
])
def test_bad_searches_are_one_line(text, message):
  config = make_tiny_zoo_config("lucic_ns_gan", search=text, search_points=20)
  with pytest.raises(UserError, match=message) as e:
    run_config.validate(config)
  assert "\n" not in str(e.value)


def test_bad_search_settings_are_one_line():
  for overrides, message in ((dict(search_points=0), "search_points"),
                             (dict(sweep="learning_rate=1e-4,1e-3"), "cannot be combined"),
                             (dict(search_score="psnr"), "search_score"),
                             (dict(search_score="fid_inception"), "needs --config.inception"),
                             (dict(search_score="fid_inception_lucic",
                                   inception_weights="/no/such.pt"), "/no/such.pt not found")):
    with pytest.raises(UserError, match=message) as e:
      run_config.validate(lucic(**overrides))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name, protocol", [("fid_classifier", None),
                                            ("fid_inception", "clean"),
                                            ("fid_inception_lucic", "lucic")])
def test_each_scorer_scores_in_its_space_and_protocol(name, protocol, monkeypatch, tmp_path):
  """search_score picks the space and (Inception) the FID protocol the sample scorer builds its
  features with, on a copy: the search's own config is left as it was; the score is the FID."""
  from genimg_jax.evaluation import point_scores, samples

  built = []

  class FakeScorer:
    def __init__(self, config, space):
      built.append((space, config.get("eval_protocol")))

    def __call__(self, images, labels=None):
      return {"fid": float(images.sum()), "kid": 0.0}

  monkeypatch.setattr(samples, "SampleScorer", FakeScorer)
  weights = tmp_path / "inception.pt"
  weights.write_bytes(b"")
  config = lucic(search_score=name, inception_weights=str(weights))
  run_config.validate(config)
  score = point_scores.make(config)
  assert built == [("classifier" if protocol is None else "inception", protocol)]
  assert score(np.full((2, 1, 1, 1), 0.25, np.float32)) == (0.5, {"fid": 0.5, "kid": 0.0})
  assert "eval_protocol" not in config


def result(scores, model="lucic_ns_gan", num_steps=200, model_num_steps=15_625):
  """A search.json's content with these point scores (None: a failed point)."""
  return {"model": model, "score": "fid_classifier", "num_steps": num_steps,
          "model_num_steps": model_num_steps,
          "points": [{"point": i, "failed": s is None, "score": s} for i, s in enumerate(scores)]}


def test_box_statistics_and_the_budget_curve():
  values = np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan])
  stats = search_plots.box_stats(values)
  assert stats["median"] == 3.0 and stats["high"] == 4.0 and list(stats["outliers"]) == [100.0]
  median, low, high = search_plots.budget(values, orders=200)
  assert median.shape == (6,) and np.all(np.diff(median) <= 0)  # More points: never worse.
  assert median[-1] == low[-1] == high[-1] == 1.0  # Every point tried: the best.
  assert np.all(low <= median) and np.all(median <= high)
  assert high[0] >= 4.0 and median[0] in (2.0, 3.0)  # One point: any of them (or failed).


def test_figures_are_labelled_reduced_when_the_search_is(tmp_path):
  small = result([30.0, 20.0, None, 25.0, 40.0])
  assert search_plots.reduced(small, 100) == "reduced: 5 of 100 points, 200 of 15,625 steps"
  assert search_plots.reduced(result([1.0] * 100, num_steps=15_625), 100) == ""
  box = search_plots.draw_box([small, result([10.0, 12.0, 50.0])], str(tmp_path / "b.png"))
  curve = search_plots.draw_budget([small], str(tmp_path / "c.png"))
  for path in (box, curve):
    with Image.open(path) as image:
      assert image.size == (search_plots.WIDTH, search_plots.HEIGHT)
      assert len(image.getcolors(1 << 16)) > 2  # Something drawn on the white.
  with pytest.raises(UserError, match="every point failed"):
    search_plots.draw_box([result([None, None])], str(tmp_path / "x.png"))
  (tmp_path / "bad.json").write_text("{")
  with pytest.raises(UserError, match="cannot read the search result"):
    search_plots.read(str(tmp_path / "bad.json"))
