"""errors.exit_on_user_error, in a child Python (it redirects stderr and exits): a UserError is
one line `error: ...` and exit 2, a NaN/Inf exit 3, a Ctrl-C before training `stopped: ...`
and exit 130; anything else is a traceback as usual."""

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT, subprocess_env

CHILD = textwrap.dedent("""
    import sys
    from genimg_jax import errors

    @errors.exit_on_user_error
    def main(kind):
      print("started", flush=True)
      if kind == "user":
        raise errors.UserError("bad value\\n  of   batch_size: use 8")
      if kind == "nonfinite":
        raise errors.NonFiniteError("g_loss became nan at step 3")
      if kind == "interrupt":
        raise KeyboardInterrupt
      if kind == "bug":
        raise ZeroDivisionError("a bug")
      print("ok", flush=True)

    main(sys.argv[1])
    print("after main", flush=True)
""")


def _run(kind):
  return subprocess.run([sys.executable, "-c", CHILD, kind], cwd=REPO_ROOT, env=subprocess_env(),
                        capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind,code,line", [
    ("user", 2, "error: bad value of batch_size: use 8"),
    ("nonfinite", 3, "error: g_loss became nan at step 3"),
    ("interrupt", 128 + signal.SIGINT, "stopped: SIGINT before training started: nothing to save"),
])
def test_user_errors_end_in_one_line_and_their_exit_code(kind, code, line):
  result = _run(kind)
  assert result.returncode == code, result.stderr
  assert result.stderr == line + "\n"  # Exactly one line, whitespace collapsed.
  assert result.stdout == "started\n"  # Nothing ran after the error.


def test_success_and_bugs_are_left_alone():
  ok = _run("ok")
  assert ok.returncode == 0 and ok.stdout == "started\nok\nafter main\n" and ok.stderr == ""
  bug = _run("bug")
  assert bug.returncode == 1 and "Traceback" in bug.stderr and "ZeroDivisionError" in bug.stderr
