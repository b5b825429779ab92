"""Benchmarks (train_step.py orchestrates, rows.py measures, flops.py counts)."""

import json
import os

ROW_MARK = "BENCH_JSON "  # Prefix of a child's result lines on stdout; anything else is a log.


def save_result(path: str, result: dict, table: str) -> str:
  """Writes `result` as JSON to `path` and `table` as Markdown beside it (same name, .md);
  returns the table."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=2)
  with open(os.path.splitext(path)[0] + ".md", "w") as f:
    f.write(table)
  return table
