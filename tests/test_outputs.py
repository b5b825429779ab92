"""Tests for genimg_jax.outputs: grids, PNGs, metrics/TensorBoard files, progress lines, config."""

import glob
import io
import json
import math
import os
import struct

import numpy as np
import pytest
from PIL import Image

from genimg_jax import outputs

H, W, PAD = 3, 4, 2


def _constant_images(n, channels=1):
  """[n, H, W, C] images; image i is filled with i / n, so each tile is identifiable."""
  values = np.arange(n, dtype=np.float32) / n
  return np.broadcast_to(values[:, None, None, None], (n, H, W, channels)).copy()


def _read_events(path):
  """Parses a TFRecord-framed event file: u64 length, u32 crc, payload, u32 crc per record."""
  from tensorboardX.proto import event_pb2
  events = []
  with open(path, "rb") as f:
    data = f.read()
  pos = 0
  while pos < len(data):
    (length,) = struct.unpack("<Q", data[pos:pos + 8])
    payload = data[pos + 12:pos + 12 + length]
    events.append(event_pb2.Event.FromString(payload))
    pos += 12 + length + 4
  return events


def _event_file(workdir):
  (path,) = glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  return path


def _read_metrics(workdir):
  with open(os.path.join(workdir, outputs.METRICS_FILE), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


# ----------------------------------------------------------------------------- image grids


@pytest.mark.parametrize("n, ncols, rows, cols", [(7, None, 3, 3), (5, None, 2, 3), (10, 4, 3, 4),
                                                  (1, None, 1, 1), (3, 5, 1, 5)])
def test_grid_shape(n, ncols, rows, cols):
  grid = outputs.image_grid(_constant_images(n, 3), ncols=ncols, padding=PAD)
  assert grid.dtype == np.uint8
  assert grid.shape == (rows * (H + PAD) + PAD, cols * (W + PAD) + PAD, 3)


def test_grid_tile_placement():
  n, cols = 5, 3
  images = _constant_images(n)
  grid = outputs.image_grid(images, ncols=cols, padding=PAD)
  for i in range(n):
    top = PAD + (i // cols) * (H + PAD)
    left = PAD + (i % cols) * (W + PAD)
    expected = np.round(i / n * 255)
    np.testing.assert_array_equal(grid[top:top + H, left:left + W, 0], expected)
  # Everything outside the tiles (padding, the unused 6th slot) is the pad colour.
  mask = np.ones(grid.shape[:2], bool)
  for i in range(n):
    top, left = PAD + (i // cols) * (H + PAD), PAD + (i % cols) * (W + PAD)
    mask[top:top + H, left:left + W] = False
  assert np.all(grid[mask] == outputs.PAD_VALUE)


def test_grid_zero_padding_is_plain_concatenation():
  images = np.random.default_rng(0).random((4, H, W, 3), dtype=np.float32)
  grid = outputs.image_grid(images, ncols=2, padding=0)
  tiles = np.round(images * 255).astype(np.uint8)
  expected = np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)])
  np.testing.assert_array_equal(grid, expected)


def test_grid_clips_and_handles_non_finite():
  images = np.array([-0.5, 1.7, 0.5, np.nan, np.inf, -np.inf], np.float32).reshape(6, 1, 1, 1)
  grid = outputs.image_grid(images, ncols=6, padding=0)
  np.testing.assert_array_equal(grid[0, :, 0], [0, 255, 128, 0, 255, 0])


@pytest.mark.parametrize("shape", [(H, W, 1), (2, H, W, 2), (0, H, W, 1)])
def test_grid_rejects_bad_shapes(shape):
  with pytest.raises(ValueError):
    outputs.image_grid(np.zeros(shape, np.float32))


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_png_round_trip(tmp_path, channels, mode):
  images = np.random.default_rng(channels).random((5, H, W, channels), dtype=np.float32)
  path = str(tmp_path / "sub" / "samples.png")
  assert outputs.save_image_grid(images, path, ncols=2) == path
  assert not os.path.exists(path + ".tmp")
  with Image.open(path) as img:
    assert img.format == "PNG" and img.mode == mode
    pixels = np.asarray(img)
  expected = outputs.image_grid(images, ncols=2)
  np.testing.assert_array_equal(pixels, expected[..., 0] if channels == 1 else expected)


# ----------------------------------------------------------------------------- RunWriter


def test_run_writer_json_lines(tmp_path):
  workdir = str(tmp_path)
  with outputs.RunWriter(workdir, enable_tensorboard=False) as writer:
    writer.write_scalars(10, {"d_loss": 1.5, "g_loss": np.float32(0.25)})
    writer.write_scalars(20, {"d_loss": float("nan"), "g_loss": float("inf"), "lr": -math.inf})
    # Flushed per call: readable before close.
    assert len(_read_metrics(workdir)) == 2
  assert not glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  with open(os.path.join(workdir, outputs.METRICS_FILE)) as f:
    lines = f.read().splitlines()
  assert json.loads(lines[0]) == {"step": 10, "d_loss": 1.5, "g_loss": 0.25}
  assert json.loads(lines[1]) == {"step": 20, "d_loss": "nan", "g_loss": "inf", "lr": "-inf"}
  for line in lines:  # Strict JSON: no bare NaN/Infinity tokens.
    json.loads(line, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))


def test_json_line_is_strict_json_of_python_and_numpy_numbers():
  record = {"fid": np.float32(2.5), "kid": float("nan"), "num": np.int64(40), "step": 12,
            "inf": np.float64("-inf"), "space": "classifier-x", "ok": True}
  line = outputs.json_line(record)
  assert "\n" not in line and "NaN" not in line and "Infinity" not in line
  assert json.loads(line) == {"fid": 2.5, "kid": "nan", "num": 40, "step": 12, "inf": "-inf",
                              "space": "classifier-x", "ok": True}
  assert isinstance(json.loads(line)["num"], int)


def test_run_writer_rejects_step_scalar(tmp_path):
  with outputs.RunWriter(str(tmp_path), enable_tensorboard=False) as writer:
    with pytest.raises(ValueError):
      writer.write_scalars(1, {"step": 3.0})


def test_run_writer_appends_and_truncates(tmp_path):
  workdir = str(tmp_path)
  with outputs.RunWriter(workdir, enable_tensorboard=False) as writer:
    for step in (1, 2, 3, 4):
      writer.write_scalars(step, {"loss": float(step)})
  with open(os.path.join(workdir, outputs.METRICS_FILE), "a") as f:
    f.write('{"step": 5, "lo')  # A line torn by a crash.
  with outputs.RunWriter(workdir, enable_tensorboard=False) as writer:  # Resume from step 2.
    writer.truncate_after(2)
    assert [r["step"] for r in _read_metrics(workdir)] == [1, 2]
    writer.write_scalars(3, {"loss": 30.0})
  assert _read_metrics(workdir) == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0},
                                    {"step": 3, "loss": 30.0}]
  assert not os.path.exists(os.path.join(workdir, outputs.METRICS_FILE + ".tmp"))


def test_run_writer_tensorboard_events(tmp_path):
  workdir = str(tmp_path)
  grid = outputs.image_grid(_constant_images(4, 3))
  with outputs.RunWriter(workdir) as writer:
    writer.write_scalars(5, {"d_loss": 1.25, "g_loss": 0.5})
    writer.write_scalars(6, {"d_loss": float("nan"), "g_loss": 0.75})
    writer.write_images(6, {"samples": grid})
    writer.truncate_after(5)
  events = _read_events(_event_file(workdir))
  assert events[0].file_version.startswith("brain.Event")
  scalars = [(e.step, v.tag, v.simple_value) for e in events if e.HasField("summary")
             for v in e.summary.value if v.HasField("simple_value")]
  # A non-finite value (a frozen run's) stays out of TensorBoard; metrics.jsonl keeps it.
  assert scalars == [(5, "d_loss", 1.25), (5, "g_loss", 0.5), (6, "g_loss", 0.75)]
  (image_event,) = [e for e in events if e.HasField("summary") and e.summary.value[0].HasField("image")]
  assert image_event.step == 6 and image_event.summary.value[0].tag == "samples"
  image = image_event.summary.value[0].image
  assert (image.height, image.width) == grid.shape[:2]
  with Image.open(io.BytesIO(image.encoded_image_string)) as img:
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), grid)
  (restart,) = [e for e in events if e.HasField("session_log")]
  assert restart.step == 6 and restart.session_log.status == restart.session_log.START


def test_run_writer_rejects_float_images(tmp_path):
  with outputs.RunWriter(str(tmp_path)) as writer:
    with pytest.raises(ValueError):
      writer.write_images(0, {"samples": np.zeros((H, W, 3), np.float32)})


# ----------------------------------------------------------------------------- Progress, config


def test_progress_plain_lines():
  stream = io.StringIO()
  progress = outputs.Progress(total_steps=5000, initial_step=1000, stream=stream)
  progress.update(1200, {"d_loss": 1.23412, "g_loss": 0.876543}, steps_per_sec=412.34)
  progress.update(1300, {"d_loss": float("nan")}, steps_per_sec=1.0)
  progress.close()
  assert stream.getvalue() == ("step 1200/5000 | d_loss 1.234 | g_loss 0.8765 | 412.3 steps/s\n"
                               "step 1300/5000 | d_loss nan | 1.0 steps/s\n")


def test_progress_of_images_names_its_unit():
  stream = io.StringIO()
  progress = outputs.Progress(1200, stream=stream, unit="image", desc="Inception features")
  progress.update(500, {}, steps_per_sec=14.25)
  assert stream.getvalue() == "Inception features: image 500/1200 | 14.2 images/s\n"


def test_progress_tty_uses_tqdm():
  class FakeTTY(io.StringIO):
    def isatty(self):
      return True

  stream = FakeTTY()
  progress = outputs.Progress(total_steps=100, initial_step=10, stream=stream)
  progress.update(40, {"d_loss": 1.23456}, steps_per_sec=99.0)
  progress.close()
  text = stream.getvalue()
  assert "40/100" in text and "d_loss=1.235" in text and "step" in text


def test_write_config(tmp_path):
  config = {"model": {"latent_dim": np.int64(64), "widths": (32, 64)}, "lr": 2e-4, "name": "dcgan"}
  path = outputs.write_config(str(tmp_path / "run"), config)
  assert path == str(tmp_path / "run" / outputs.CONFIG_FILE)
  with open(path) as f:
    text = f.read()
  assert json.loads(text) == {"lr": 2e-4, "model": {"latent_dim": 64, "widths": [32, 64]},
                              "name": "dcgan"}
  assert text.index('"lr"') < text.index('"model"') < text.index('"name"')  # Sorted keys.
  assert '\n  "lr"' in text  # Indent 2.
