"""What the results suite and the search write down: JSON records written whole (a kill never
leaves half of one), the latest checkpoint step of a run folder, and the environment a result
was made in (device, date, commit)."""

import datetime
import json
import os
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json(path: str, data) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True, default=float)
  os.replace(tmp, path)  # A kill never leaves half a record.


def latest_step(workdir: str) -> int:
  steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))
           if d.isdigit()] if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
  return max(steps, default=0)


def environment() -> dict:
  """Device, UTC date and the repository's commit (with '-dirty' for uncommitted changes)."""
  import jax

  device = jax.devices()[0]
  try:
    commit = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True,
                           check=True).stdout.strip()
    commit += "-dirty" if dirty else ""
  except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
  kind = device.device_kind if device.device_kind != device.platform else ""
  cores = f", {os.cpu_count()} host cores" if device.platform == "cpu" else ""
  return {"device": f"{jax.device_count()}× {device.platform} {kind}".strip() + cores,
          "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
          "commit": commit}
