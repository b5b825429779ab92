"""Run outputs: sample image grids, metrics (JSON lines + TensorBoard), progress, config.

Everything here is host-side numpy / file I/O; nothing touches JAX, TensorFlow or torch.
"""

import io
import json
import math
import os
import sys

import numpy as np
from PIL import Image

# Padding (and empty-tile) colour: mid-grey stays visible between MNIST's black
# backgrounds as well as between light images, unlike black or white.
PAD_VALUE = 128
_MAX_PIXEL = 255
_PIL_MODES = {1: "L", 3: "RGB"}  # Channels -> Pillow mode.

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
# TensorBoard events reach disk at least this often (tensorboardX default is 120 s).
_TB_FLUSH_SECS = 30
_SIG_DIGITS = 4  # Significant digits of losses in progress output.


def _atomic_write(path: str, data: bytes) -> str:
  """Writes `data` to `path + '.tmp'`, then renames it over `path`: readers never see half a file."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


# ----------------------------------------------------------------------------- image grids


def image_grid(images: np.ndarray, ncols: int | None = None, padding: int = 2) -> np.ndarray:
  """Tiles float images [N, H, W, C] in [0, 1] into one uint8 image, row-major.

  Returns [rows*(H+padding)+padding, cols*(W+padding)+padding, C] with cols = ncols or
  ceil(sqrt(N)) and rows = ceil(N / cols). Values are clipped to [0, 1] (NaN -> 0) and
  rounded; padding and unused tiles are mid-grey (PAD_VALUE).
  """
  images = np.asarray(images, dtype=np.float32)
  if images.ndim != 4 or images.shape[-1] not in _PIL_MODES or images.shape[0] < 1:
    raise ValueError(f"expected images [N>=1, H, W, C in (1, 3)], got shape {images.shape}")
  if padding < 0:
    raise ValueError(f"padding must be >= 0, got {padding}")
  n, h, w, c = images.shape
  cols = math.ceil(math.sqrt(n)) if ncols is None else int(ncols)
  if cols < 1:
    raise ValueError(f"ncols must be >= 1, got {ncols}")
  rows = math.ceil(n / cols)

  # A diverged generator can emit NaN/Inf; draw them instead of crashing the run.
  clean = np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0)
  tiles = np.round(np.clip(clean, 0.0, 1.0) * _MAX_PIXEL).astype(np.uint8)  # [N, H, W, C]

  grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c),
                 PAD_VALUE, dtype=np.uint8)
  for i in range(n):
    top = padding + (i // cols) * (h + padding)
    left = padding + (i % cols) * (w + padding)
    grid[top:top + h, left:left + w] = tiles[i]
  return grid


def save_image_grid(images: np.ndarray, path: str, ncols: int | None = None) -> str:
  """Writes image_grid(images, ncols) as a PNG ('L' or 'RGB') atomically; returns path."""
  grid = image_grid(images, ncols)  # [H', W', C] uint8
  channels = grid.shape[-1]
  pixels = grid[..., 0] if channels == 1 else grid
  image = Image.fromarray(pixels)  # uint8 [H, W] -> 'L', [H, W, 3] -> 'RGB'.
  buf = io.BytesIO()
  image.save(buf, format="PNG")
  return _atomic_write(path, buf.getvalue())


# ----------------------------------------------------------------------------- metrics


def json_number(value) -> float | str:
  """float(value), but NaN/Inf become "nan"/"inf"/"-inf" so every line stays strict JSON."""
  x = float(value)
  if math.isnan(x):
    return "nan"
  if math.isinf(x):
    return "inf" if x > 0 else "-inf"
  return x


def json_line(record: dict) -> str:
  """`record` as one line of strict JSON: floats (numpy's too) through json_number, numpy
  integers as ints, anything else (ints, strings, bools) as it is."""
  def value(v):
    if isinstance(v, (float, np.floating)):
      return json_number(v)
    return int(v) if isinstance(v, np.integer) else v

  return json.dumps({k: value(v) for k, v in record.items()}, allow_nan=False)


def run_folder(workdir: str, run: int | None) -> str:
  """Where run `run` of a many-runs program writes its PNGs and TensorBoard events."""
  return str(workdir) if run is None else os.path.join(str(workdir), f"run_{run}")


class RunWriter:
  """Writes scalars to `workdir/metrics.jsonl` (one JSON object per call) and TensorBoard.

  Non-finite scalars are stored in the JSON file as the strings "nan", "inf", "-inf"
  (read back with float(v)); TensorBoard gets the real float. Existing metrics are
  appended to; call truncate_after(step) on resume so no step appears twice.
  `runs` (a many-runs program): each run's tags ({"run": r, "seed": s, swept values}); its
  lines carry them and its TensorBoard events go to `run_folder(workdir, r)`, so TensorBoard's
  run selector overlays the runs.
  """

  def __init__(self, workdir: str, enable_tensorboard: bool = True,
               runs: list[dict] | None = None):
    self.workdir = str(workdir)
    os.makedirs(self.workdir, exist_ok=True)
    self.metrics_path = os.path.join(self.workdir, METRICS_FILE)
    self._metrics = open(self.metrics_path, "a", encoding="utf-8")
    self._runs = runs
    self._tbs = {}  # run (None: the single run) → SummaryWriter.
    if enable_tensorboard:
      from tensorboardX import SummaryWriter  # Local: ~0.3 s import, only when used.
      for run in ([None] if runs is None else range(len(runs))):
        self._tbs[run] = SummaryWriter(logdir=run_folder(self.workdir, run),
                                       flush_secs=_TB_FLUSH_SECS)

  def write_scalars(self, step: int, scalars: dict[str, float], run: int | None = None) -> None:
    """Appends {"step": step, **run tags, **scalars} as one flushed line and logs each finite
    scalar to TensorBoard."""
    if "step" in scalars:
      raise ValueError("'step' is reserved as a scalar name")
    step = int(step)
    tags = {} if run is None else self._runs[run]
    record = {"step": step, **tags, **{k: json_number(v) for k, v in scalars.items()}}
    self._metrics.write(json.dumps(record, allow_nan=False) + "\n")
    self._metrics.flush()
    if run in self._tbs:  # Non-finite values (a frozen run's) stay out of TensorBoard, whose
      for name, value in scalars.items():  # writer warns once per NaN; metrics.jsonl has them.
        if math.isfinite(float(value)):
          self._tbs[run].add_scalar(name, float(value), global_step=step)

  def write_images(self, step: int, images: dict[str, np.ndarray], run: int | None = None) -> None:
    """Logs each uint8 [H, W, C] grid (e.g. from image_grid) as a TensorBoard image."""
    if run not in self._tbs:
      return
    for name, grid in images.items():
      grid = np.asarray(grid)
      if grid.dtype != np.uint8 or grid.ndim != 3:
        raise ValueError(f"image {name!r}: expected uint8 [H, W, C], got {grid.dtype} {grid.shape}")
      self._tbs[run].add_image(name, grid, global_step=int(step), dataformats="HWC")

  def truncate_after(self, step: int) -> None:
    """Keeps only metrics lines with step <= `step` (atomic rewrite); for resuming a run.

    Unparseable lines (a line torn by a crash) are dropped too. TensorBoard gets a
    SessionLog.START at step+1, which makes its reader discard older events from that
    step on, so curves from the abandoned tail do not overlap the resumed run.
    """
    step = int(step)
    self._metrics.close()
    kept = []
    with open(self.metrics_path, encoding="utf-8") as f:
      for line in f:
        try:
          record = json.loads(line)
          keep = int(record["step"]) <= step
        except (ValueError, KeyError, TypeError):
          keep = False
        if keep:
          kept.append(line if line.endswith("\n") else line + "\n")
    _atomic_write(self.metrics_path, "".join(kept).encode("utf-8"))
    self._metrics = open(self.metrics_path, "a", encoding="utf-8")
    from tensorboardX.proto.event_pb2 import Event, SessionLog
    for tb in self._tbs.values():
      tb.file_writer.add_event(Event(session_log=SessionLog(status=SessionLog.START)),
                               step=step + 1)

  def close(self) -> None:
    """Flushes and closes both outputs; safe to call twice."""
    if not self._metrics.closed:
      self._metrics.close()
    for tb in self._tbs.values():
      tb.close()
    self._tbs = {}

  def __enter__(self) -> "RunWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class NullWriter:
  """RunWriter's (and a text stream's) methods, writing nothing: processes other than 0."""

  def write_scalars(self, step, scalars, run=None) -> None:
    pass

  def write_images(self, step, images, run=None) -> None:
    pass

  def truncate_after(self, step) -> None:
    pass

  def write(self, text) -> None:
    pass

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


# ----------------------------------------------------------------------------- progress


def _fmt(value: float) -> str:
  return f"{float(value):.{_SIG_DIGITS}g}"


class Progress:
  """Training progress: a tqdm bar on a terminal, else one flushed plain line per update.

  Plain lines look like `step 1200/5000 | d_loss 1.234 | g_loss 0.8765 | 412.3 steps/s`,
  which stay readable in log files and CI output where a redrawn bar would not.
  """

  def __init__(self, total_steps: int, initial_step: int = 0, stream=None, unit: str = "step",
               desc: str | None = None):
    self.total_steps = int(total_steps)
    self.stream = sys.stdout if stream is None else stream
    self.unit, self.desc = unit, desc  # "step" / "image"; desc prefixes plain lines too.
    isatty = getattr(self.stream, "isatty", None)
    self._bar = None
    if isatty is not None and isatty():
      from tqdm import tqdm
      self._bar = tqdm(total=self.total_steps, initial=int(initial_step), unit=unit, desc=desc,
                       file=self.stream, dynamic_ncols=True)

  def update(self, step: int, scalars: dict[str, float], steps_per_sec: float) -> None:
    """Reports that training has reached `step` (absolute, not an increment)."""
    step = int(step)
    if self._bar is not None:
      postfix = {name: _fmt(value) for name, value in scalars.items()}
      postfix[f"{self.unit}s/s"] = f"{steps_per_sec:.1f}"
      self._bar.set_postfix(postfix, refresh=False)
      self._bar.update(step - self._bar.n)
      return
    parts = [f"{self.desc + ': ' if self.desc else ''}{self.unit} {step}/{self.total_steps}"]
    parts += [f"{name} {_fmt(value)}" for name, value in scalars.items()]
    parts.append(f"{steps_per_sec:.1f} {self.unit}s/s")
    self.stream.write(" | ".join(parts) + "\n")
    self.stream.flush()

  def close(self) -> None:
    """Closes the bar (a no-op for plain lines)."""
    if self._bar is not None:
      self._bar.close()
      self._bar = None


# ----------------------------------------------------------------------------- config


def _json_default(value):
  """Lets numpy scalars and arrays (common in configs) serialize as plain JSON."""
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"config value of type {type(value).__name__} is not JSON serializable")


def write_config(workdir: str, config_dict: dict) -> str:
  """Writes `workdir/config.json` (indent 2, sorted keys) atomically; returns its path."""
  text = json.dumps(config_dict, indent=2, sort_keys=True, default=_json_default) + "\n"
  return _atomic_write(os.path.join(str(workdir), CONFIG_FILE), text.encode("utf-8"))
