"""A new model is one module file + one config: a throwaway architecture and its config, written
into a temporary folder outside the repository, train 5 steps through `python train.py`, with
no other file edited, and the repository left exactly as it was."""

import json
import os
import subprocess
import textwrap

import pytest

from tests.conftest import REPO_ROOT, run_python

ARCHITECTURE = textwrap.dedent('''
    """A throwaway GAN architecture: one hidden Dense layer each for G and D."""

    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np

    from genimg_jax.errors import UserError


    class Generator(nn.Module):
      image_shape: tuple
      width: int
      batch_norm_axis_name: str | None = None

      @nn.compact
      def __call__(self, z, labels=None, train=True):
        x = nn.relu(nn.Dense(self.width)(z))
        x = jnp.tanh(nn.Dense(int(np.prod(self.image_shape)))(x))
        return x.reshape((z.shape[0], *self.image_shape))


    class Discriminator(nn.Module):
      width: int
      batch_norm_axis_name: str | None = None

      @nn.compact
      def __call__(self, images, labels=None, train=True):
        x = nn.relu(nn.Dense(self.width)(images.reshape((images.shape[0], -1))))
        return nn.Dense(1)(x)[:, 0].astype(jnp.float32)


    def check_config(config):
      if config.tiny_width <= 0:
        raise UserError(f"config.tiny_width must be positive, got {config.tiny_width}")


    def gan_networks(config, image_shape, num_classes=0):
      return Generator(tuple(image_shape), config.tiny_width), Discriminator(config.tiny_width)
''')

CONFIG = textwrap.dedent('''
    """The throwaway model's config: the GAN base plus the architecture's one key."""

    from configs import _gan


    def get_config():
      config = _gan.get_config()
      config.architecture = "throwaway_nets"  # The module beside this file (on PYTHONPATH).
      config.tiny_width = 16  # Hidden width of G and D.
      config.num_steps = 5
      config.batch_size = 8
      config.log_every = 5
      config.sample_every = 5
      config.checkpoint_every = 5
      config.num_grid_samples = 4
      return config
''')


def _repository_state() -> str:
  """Tracked changes and untracked files of the repository (ignored ones excluded)."""
  return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO_ROOT,
                        capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_new_model_is_one_module_and_one_config(tmp_path, monkeypatch):
  if not os.path.isdir(os.path.join(REPO_ROOT, ".git")):
    pytest.skip("needs a git checkout to prove the repository is untouched")
  folder = tmp_path / "my_lab"
  folder.mkdir()
  (folder / "throwaway_nets.py").write_text(ARCHITECTURE)
  (folder / "throwaway_gan.py").write_text(CONFIG)
  workdir = tmp_path / "run"
  before = _repository_state()
  monkeypatch.setenv("PYTHONPATH", str(folder))  # run_python prepends the repository root.
  result = run_python(["train.py", "--model", str(folder / "throwaway_gan.py"),
                       "--workdir", str(workdir)])
  assert result.returncode == 0, result.stderr[-2000:]
  assert "done: 5 steps of throwaway_gan" in result.stdout
  assert _repository_state() == before
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [5]
  assert (workdir / "samples_5.png").exists()
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["architecture"] == "throwaway_nets" and saved["tiny_width"] == 16

  # The architecture's own check runs before anything trains: one line, non-zero exit.
  bad = run_python(["train.py", "--model", str(folder / "throwaway_gan.py"),
                    "--workdir", str(tmp_path / "bad"), "--config.tiny_width=0"])
  assert bad.returncode != 0
  assert bad.stderr.strip().splitlines() == [
      "error: config.tiny_width must be positive, got 0"], bad.stderr
