"""The results suite's files on disk: JSON records written whole (a kill never leaves half of
one) and the latest checkpoint step of a run folder."""

import json
import os


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
