"""train/distributed.py in one process: no initialisation unless asked, process 0 writes, the
sizes a run checks before it starts (shards, devices, batch, data), the lock held through
`workdir_held`, and which failures are taken for a lost peer. Several processes:
test_e2e_distributed.py."""

import jax
import ml_collections
import pytest

from genimg_jax.errors import UserError
from genimg_jax.train import distributed
from tests.reliability_support import lock_record


def _config(**overrides):
  config = ml_collections.ConfigDict({"batch_size": 8, "data_shards": 0, "parallel": "jit",
                                      "dataset": "toy", "distributed": False})
  config.update(overrides)
  return config


def test_one_process_is_not_initialised_and_writes():
  distributed.initialize(_config())  # distributed=False: nothing to start.
  assert not jax.distributed.is_initialized()
  assert jax.process_count() == 1 and distributed.is_writer()


def test_data_shards_resolve_to_one_per_process_and_sizes_are_checked():
  config = _config()
  assert distributed.check_sizes(config, num_devices=1, num_examples=100) == 1
  assert config.data_shards == 1  # Stored resolved: the checkpoint records its shards.
  assert distributed.check_sizes(_config(data_shards=2), num_devices=4, num_examples=100) == 2


@pytest.mark.parametrize("overrides,devices,examples,expected", [
    ({"batch_size": 12}, 8, 100, ("batch_size 12", "8 devices", "multiple of 8")),
    ({"data_shards": 3}, 4, 100, ("data_shards 3", "4 devices", "--config.data_shards=1")),
    ({"batch_size": 8}, 1, 5, ("5 training images", "batch_size 8")),
    ({"batch_size": 8, "data_shards": 2}, 2, 7, ("7 training images", "2 shards")),
])
def test_sizes_that_cannot_run_are_one_line(overrides, devices, examples, expected):
  with pytest.raises(UserError) as error:
    distributed.check_sizes(_config(**overrides), devices, examples)
  line = str(error.value)
  assert "\n" not in line
  for part in expected:
    assert part in line, line


def test_workdir_held_holds_the_lock_while_the_run_lasts(tmp_path):
  with distributed.workdir_held(str(tmp_path)):
    assert lock_record(tmp_path)["pid"] > 0
    with pytest.raises(UserError, match="in use"):  # A second run in the same folder is refused.
      with distributed.workdir_held(str(tmp_path)):
        pass
  assert lock_record(tmp_path) == {}  # Released at the end.


def test_only_a_broken_collective_is_taken_for_a_lost_peer():
  """The gloo failure is found behind the errors that wrap it; others pass unchanged (here:
  one process, so no roll call)."""
  gloo = ("UNKNOWN: Gloo AllGather failed: [pair.cc:547] Connection closed by peer "
          "[127.0.0.1]:6419\nmore")
  try:
    try:
      raise ValueError(gloo)
    except ValueError as e:
      raise UserError(f"cannot save the checkpoint of step 4 ({type(e).__name__})") from None
  except UserError as wrapped:
    assert distributed._broken_collective(wrapped) == gloo.splitlines()[0]
  assert distributed._broken_collective(RuntimeError("out of memory")) is None
  with pytest.raises(ValueError, match="Gloo"):
    with distributed.lost_peers_reported("unused"):
      raise ValueError(gloo)
