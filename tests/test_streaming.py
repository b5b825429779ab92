"""Streamed batches (`config.data_on_device=False`: data/streaming.py, data/feeding.py,
data/placement.place_streamed) against the device-resident path (docs/data.md).

Independent facts: the rows the host reads for a step are the rows `batching.device_rows` draws
on the devices (checked row for row, with shards, several devices and n batches a step); an
epoch visits every example of every shard once; whole runs (the embedded set, and a TFDS
array_record set written here, crossing epochs, with n_critic 2 and a resize) end bit for bit
where device-resident runs end, on 1 device and on 4 fake CPU devices in 2 shards (jit and
pmap); checkpoints hold Grain's iterator state at their step; a run resumes across the two paths.
kill -9 + resume of a streamed run is in test_resume.py (RUNS["gan_stream"]).
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genimg_jax import prepare
from genimg_jax.data import streaming
from genimg_jax.errors import UserError
from genimg_jax.data import batching, feeding
from genimg_jax.train import run_config
from genimg_jax.train.loop import train_and_evaluate
from tests.conftest import (REPO_ROOT, make_tiny_gan_config, make_tiny_vae_config, subprocess_env,
                            xla_flags)
from tests.reliability_support import (
    TINY_GAN, assert_bit_identical, assert_one_line_error, state_leaves, train)

PER_CLASS = 21  # Two classes: 42 records. Batch 8: 5 steps an epoch (2 records unused).


@pytest.fixture(scope="module")
def pets_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding `pets`: 42 random 8×8 RGB PNGs in 2 classes, prepared as
  array_record by `python -m genimg_jax.prepare`."""
  root = tmp_path_factory.mktemp("streaming")
  rng = np.random.default_rng(0)
  for cls in ("cat", "dog"):
    (root / "images" / cls).mkdir(parents=True)
    for i in range(PER_CLASS):
      image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
      Image.fromarray(image).save(root / "images" / cls / f"{i:02d}.png")
  prepare.main(["pets", "--from", str(root / "images"), "--data_dir", str(root / "tfds")])
  return str(root / "tfds")


# --------------------------------------------------------------------------- host plan


@pytest.mark.parametrize("devices,shards,local,n", [
    (1, 1, [0], 1), (4, 2, [2, 3], 1), (4, 2, [0, 1], 2), (4, 1, [1, 3], 2), (2, 2, [1], 3)])
def test_step_indices_are_the_rows_the_devices_draw(devices, shards, local, n):
  """StepIndices(t) = the global record ids `batching.device_rows` gathers at step t on the
  given devices (each device reads its shard's records), across epoch boundaries."""
  batch, shard_size = 8, 20
  layout = batching.Layout(n * batch, devices, shards, shard_size)
  run_key = jax.random.PRNGKey(7)
  indices = streaming.StepIndices(streaming.EpochOrders(run_key, layout), layout, local)
  _, data_base = batching.split_run_key(run_key)
  per_shard = devices // shards
  assert indices.rows_per_step == len(local) * n * batch // devices
  for step in range(2 * indices.steps_per_epoch + 1):
    epoch, position = divmod(step, indices.steps_per_epoch)
    order = batching.shard_orders(data_base, epoch, layout)
    drawn = [batching.device_rows(order, position,
                                  {"id": jnp.arange(shard_size) + d // per_shard * shard_size},
                                  d, layout)["id"] for d in local]
    np.testing.assert_array_equal(indices(step), np.concatenate(drawn), err_msg=f"step {step}")


def test_an_epoch_visits_every_example_of_every_shard_once():
  """All devices of all processes over one epoch: distinct records, each shard's from its own
  range, steps_per_epoch · B of them; the next epoch visits them in another order."""
  devices, shards, shard_size, batch = 4, 2, 21, 8
  layout = batching.Layout(batch, devices, shards, shard_size)
  orders = streaming.EpochOrders(jax.random.PRNGKey(0), layout)
  per_process = [streaming.StepIndices(orders, layout, ids) for ids in ([0, 1], [2, 3])]
  spe = per_process[0].steps_per_epoch
  assert spe == shard_size // (batch // shards) == 5
  epochs = []
  for epoch in range(2):
    steps = range(epoch * spe, (epoch + 1) * spe)
    seen = [np.concatenate([p(t) for t in steps]) for p in per_process]
    for process, rows in enumerate(seen):  # Process p holds shard p.
      assert len(set(rows.tolist())) == len(rows) == spe * batch // shards
      assert rows.min() >= process * shard_size and rows.max() < (process + 1) * shard_size
    epochs.append(np.concatenate(seen))
  assert sorted(epochs[0].tolist()) != list(range(len(epochs[0])))  # Shuffled, not in order.
  assert epochs[0].tolist() != epochs[1].tolist()


def test_epoch_orders_in_any_order_are_the_devices_orders():
  """Reader threads may ask for epochs out of order (a late step of the previous epoch): each
  answer is `batching.shard_orders` of that epoch, whatever the cache held."""
  layout = batching.Layout(8, 4, 2, 13)
  orders = streaming.EpochOrders(jax.random.PRNGKey(5), layout, keep=2)
  _, data_base = batching.split_run_key(jax.random.PRNGKey(5))
  for epoch in (2, 3, 0, 3, 1, 0, 0, 2):
    np.testing.assert_array_equal(orders(epoch), batching.shard_orders(data_base, epoch, layout))


def test_grain_stream_state_round_trips():
  """The Grain dataset of steps: elements are StepReader's rows; set_state(next_index=k) resumes
  at step k; get_state after k steps says k."""
  images = np.arange(40 * 2 * 2 * 1, dtype=np.uint8).reshape(40, 2, 2, 1)
  split = streaming.ArraySplit(images, np.arange(40, dtype=np.int32), 10)
  layout = batching.Layout(8, 1, 1, 40)
  indices = streaming.StepIndices(streaming.EpochOrders(jax.random.PRNGKey(1), layout), layout,
                                  [0])
  dataset = streaming.step_dataset(split, indices, num_steps=12, workers=2, buffer=4)
  iterator = iter(dataset)
  first = [next(iterator) for _ in range(7)]
  assert iterator.get_state() == {"next_index": 7}
  for t, element in enumerate(first):
    np.testing.assert_array_equal(element["label"], indices(t))
    np.testing.assert_array_equal(element["image"], images[indices(t)])
  again = iter(dataset)
  again.set_state({"next_index": 5})
  np.testing.assert_array_equal(next(again)["label"], first[5]["label"])


# --------------------------------------------------------------------------- whole runs


def _leaves(workdir):
  return state_leaves(workdir)[0]


def _position(workdir, step):
  path = os.path.join(workdir, "checkpoints", str(step), "data", "process_0-of-1.json")
  with open(path) as f:
    return json.load(f)


CASES = {  # name → (tiny config, overrides).
    "embedded": (make_tiny_gan_config, dict(steps_per_dispatch=5)),  # 2 workers; K ∤ 6.
    "tfds_n_critic2_resized": (make_tiny_gan_config, dict(dataset="pets", image_size=6,
                                                          n_critic=2)),
    "conditional_vae": (make_tiny_vae_config, dict(conditional=True)),  # Labels streamed too.
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_streamed_run_ends_where_device_resident_run_ends(case, pets_dir, tmp_path):
  """Same seed ⇒ the same batches ⇒ the same final state, bit for bit (params, optimiser
  states, step, key, data order); every checkpoint holds the stream's position at its step."""
  make_config, overrides = CASES[case]
  for on_device in (True, False):
    train_and_evaluate(make_config(data_on_device=on_device, data_dir=pets_dir, **overrides),
                       str(tmp_path / str(on_device)))
  assert_bit_identical(_leaves(tmp_path / "False"), _leaves(tmp_path / "True"), case)
  for step in (6, 12):
    assert _position(str(tmp_path / "False"), step) == {"next_index": step}
  assert not os.path.exists(tmp_path / "True" / "checkpoints" / "12" / "data")


@pytest.mark.slow
def test_resume_across_paths(pets_dir, tmp_path):
  """Interrupted at step 7 (mid-epoch: 5 steps an epoch) and resumed: device → streamed and
  streamed → device end where an uninterrupted device run ends (streamed → streamed, killed:
  test_resume.py's gan_stream cases)."""
  config = lambda on, steps: make_tiny_gan_config(dataset="pets", data_dir=pets_dir,
                                                  data_on_device=on, num_steps=steps,
                                                  checkpoint_every=7)
  train_and_evaluate(config(True, 12), str(tmp_path / "reference"))
  expected = _leaves(tmp_path / "reference")
  for first, second in ((True, False), (False, True)):
    workdir = str(tmp_path / f"{first}_{second}")
    train_and_evaluate(config(first, 7), workdir)
    train_and_evaluate(config(second, 12), workdir)
    assert_bit_identical(_leaves(workdir), expected, f"{first} then {second}")
    if not second:
      assert _position(workdir, 12) == {"next_index": 12}


def test_inconsistent_saved_position_is_one_line():
  assert feeding.start_position(None, 9) == {"next_index": 9}
  assert feeding.start_position({"next_index": 9}, 9) == {"next_index": 9}
  with pytest.raises(UserError, match="position 3: it is inconsistent"):
    feeding.start_position({"next_index": 3}, 9)


FOUR_DEVICES = r"""
import sys
import jax, numpy as np
from genimg_jax.train.loop import train_and_evaluate
from genimg_jax.generate import load_run
from tests.conftest import make_tiny_gan_config
assert jax.device_count() == 4
out = {}
for parallel in ("jit", "pmap"):
  for on in (True, False):
    workdir = f"{sys.argv[1]}/{parallel}_{on}"
    train_and_evaluate(make_tiny_gan_config(dataset="pets", data_dir=sys.argv[2], data_shards=2,
                                            n_critic=2, parallel=parallel, data_on_device=on,
                                            num_steps=4, sample_every=4,
                                            checkpoint_every=4), workdir)  # K = 4: one compile.
    _, state, _ = load_run(workdir)
    for i, leaf in enumerate(jax.tree_util.tree_leaves(state)):
      out[f"{parallel}_{on}_{i}"] = np.asarray(leaf)
np.savez(f"{sys.argv[1]}/leaves.npz", **out)
"""


@pytest.mark.slow
def test_four_devices_two_shards_jit_and_pmap(pets_dir, tmp_path):
  """4 fake CPU devices, 2 data shards, n_critic 2 (2 steps an epoch: 4 steps cross two epoch
  ends): streamed = device-resident bit for bit, under jit and under pmap (each path against
  itself: they sum gradients differently)."""
  env = dict(subprocess_env(), XLA_FLAGS=xla_flags(4))
  proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES, str(tmp_path), pets_dir],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  leaves = dict(np.load(tmp_path / "leaves.npz"))
  count = len([k for k in leaves if k.startswith("jit_True_")])
  for parallel in ("jit", "pmap"):
    for i in range(count):
      got, want = leaves[f"{parallel}_False_{i}"], leaves[f"{parallel}_True_{i}"]
      assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), f"{parallel} leaf {i}"


# --------------------------------------------------------------------------- bad input


def test_bad_values_are_one_line(tmp_path):
  with pytest.raises(UserError, match="config.data_workers must be zero or a positive integer"):
    run_config.validate(make_tiny_gan_config(data_workers=-1))
  config = make_tiny_gan_config()
  with config.unlocked(), config.ignore_type():
    config.data_on_device = 1
  with pytest.raises(UserError, match="config.data_on_device must be True or False"):
    run_config.validate(config)
  line = assert_one_line_error(train(TINY_GAN + ["--config.data_on_device=maybe", "--workdir",
                                                 str(tmp_path / "run")], subprocess_env()))
  assert "data_on_device" in line


def test_a_set_too_big_for_the_device_says_to_stream():
  from genimg_jax.data import placement

  class Device:  # 1 GiB free.
    platform = "gpu"

    def memory_stats(self):
      return {"bytes_limit": 2**31, "bytes_in_use": 2**30}

  with pytest.raises(UserError, match=r"set --config\.data_on_device=False to stream"):
    placement.check_fits_on_device(2**31, Device())


def test_a_streamed_record_of_another_size_is_one_line(tmp_path):
  """Records are checked as they are read: a mid-stream image of another size stops the run
  with the load path's one line (pass --config.image_size=N), raised in the loop's thread."""
  rng = np.random.default_rng(1)
  (tmp_path / "images" / "a").mkdir(parents=True)
  for i in range(8):
    size = 6 if i == 5 else 8
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "images" / "a" / f"{i}.png")
  data_dir = str(tmp_path / "tfds")
  prepare.main(["mixed", "--from", str(tmp_path / "images"), "--data_dir", data_dir])
  config = make_tiny_gan_config(dataset="mixed", data_dir=data_dir, data_on_device=False)
  with pytest.raises(UserError, match=r"different shapes .* pass --config\.image_size=N"):
    train_and_evaluate(config, str(tmp_path / "run"))
