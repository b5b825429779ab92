"""Train and score the results suite; update docs/RESULTS.md, docs/results.json, README.md's
headline block and one sample grid per row (docs/images/results/ROW.png).

  python -m genimg_jax.reproduce --suite cpu|gpu|long|tiny|ROW[,ROW...] [--out reproduce_runs]
      [--docs docs] [--data_dir D] [--cache_dir C] [--inception_weights W] [--list]

The rows finished now replace their records; every other row's record is kept (a run that
finished nothing writes nothing). The README is the one beside --docs (docs/../README.md).
A rerun skips finished rows; a killed suite resumes inside the row it was in (from the run's
latest checkpoint). A row whose data set is not prepared is skipped with the command that
prepares it.
"""

import argparse
import os
import sys

from genimg_jax.errors import UserError, exit_on_user_error
from genimg_jax.reproduce import rows as rows_lib
from genimg_jax.reproduce import runner, searches, table


def select(spec: str) -> list:
  """The rows of suite `spec`, or of the comma-separated row names; one-line UserError
  listing the valid names otherwise."""
  if spec in rows_lib.SUITES:
    return list(rows_lib.SUITES[spec])
  names = [n.strip() for n in spec.split(",") if n.strip()]
  unknown = [n for n in names if n not in rows_lib.ROWS]
  if unknown or not names:
    raise UserError(f"unknown suite or row {', '.join(unknown) or repr(spec)}: use a suite "
                    f"({', '.join(rows_lib.SUITES)}) or rows ({', '.join(rows_lib.ROWS)})")
  return [rows_lib.ROWS[n] for n in dict.fromkeys(names)]


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m genimg_jax.reproduce",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--suite", required=True,
                      help=f"a suite ({', '.join(rows_lib.SUITES)}) or ROW[,ROW...]")
  parser.add_argument("--out", default="reproduce_runs", help="folder of the rows' runs")
  parser.add_argument("--docs", default=os.path.join(runner.REPO_ROOT, "docs"),
                      help="where RESULTS.md, results.json and images/results/ go")
  parser.add_argument("--data_dir", default="", help="TFDS data dir of the prepared sets")
  parser.add_argument("--cache_dir", default="", help="classifier / reference feature cache")
  parser.add_argument("--inception_weights", default="",
                      help="TorchScript Inception-v3 file: rows with Inception FID need it")
  parser.add_argument("--list", action="store_true",
                      help="print the selected rows with their estimated minutes, run nothing")
  return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> None:
  args = _parse(argv)
  rows = select(args.suite)
  if args.list:
    for row in rows:
      print(f"{row.name}: {row.model} on {row.dataset}, {row.steps:,} steps × "
            f"{len(row.seeds)} seeds, ~{row.estimate_minutes:g} min")
    print(f"total ~{sum(r.estimate_minutes for r in rows):g} min")
    return
  if args.inception_weights and not os.path.isfile(args.inception_weights):
    raise UserError(f"Inception weights file {args.inception_weights} not found: pass "
                    f"--inception_weights PATH of an inception-2015-12-05.pt, or leave it out "
                    f"(classifier space only)")
  docs = os.path.abspath(args.docs)
  table.read(docs)  # An unreadable table stops here, before any training.
  try:
    os.makedirs(args.out, exist_ok=True)
  except OSError as e:
    raise UserError(f"--out {args.out} cannot be created ({e.strerror}): pass a folder you "
                    f"can write") from None
  images_dir = os.path.join(docs, "images", "results")
  finished, not_run = [], []
  for row in rows:
    record = runner.run_row(row, args.out, images_dir, args.data_dir, args.cache_dir,
                            args.inception_weights, log=runner.stderr_log)
    (finished if record["status"] == "done" else not_run).append(record)
  if finished:
    headline = [r.name for r in rows_lib.ROWS.values() if r.headline or r.reference]
    written = table.write(finished, docs, list(rows_lib.ROWS), headline, args.out,
                          os.path.join(os.path.dirname(docs), "README.md"),
                          searches.section(docs), rows_lib.defined())
    print(f"wrote {written['page']} and {written['data']}: {len(finished)} row(s) updated, "
          f"the others kept; {len(not_run)} not run")
    print(written["readme"])
    if written["dropped"]:
      print(f"dropped the records of rows no longer defined: {', '.join(written['dropped'])}")
  else:
    print(f"no row finished ({len(not_run)} not run): {docs}/RESULTS.md, results.json and "
          f"README.md left as they were")
  if any(r["status"] == "failed" for r in not_run):
    sys.exit(1)


if __name__ == "__main__":
  main(sys.argv[1:])
