"""signals, in a child Python (they install process-wide handlers): inside StopRequest the first
SIGTERM / SIGINT is recorded instead of ending the process and a second one acts as usual;
DeferredInterrupt holds a SIGINT until its block ends, then raises KeyboardInterrupt."""

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT, subprocess_env

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from genimg_jax.train import signals

    test, signum = sys.argv[1], getattr(signal, sys.argv[2])
    # Python's own start-up handlers, whatever the parent passed on (a parent that ignores
    # SIGINT makes its children start with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if test == "stop":
      with signals.StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signum)
        time.sleep(0.2)
        print("still running", stop.requested, stop.signum == signum, flush=True)
        if sys.argv[3] == "twice":
          os.kill(os.getpid(), signum)  # The default action again: the process ends here.
          time.sleep(5)
          print("survived a second signal", flush=True)
      print("handlers restored", signal.getsignal(signum) is not stop._handle, flush=True)
    else:
      try:
        with signals.DeferredInterrupt():
          os.kill(os.getpid(), signal.SIGINT)
          time.sleep(0.2)
          print("block finished", flush=True)
      except KeyboardInterrupt:
        print("KeyboardInterrupt after the block", flush=True)
""")


def _run(*args):
  return subprocess.run([sys.executable, "-c", CHILD, *args], cwd=REPO_ROOT,
                        env=subprocess_env(), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_first_signal_is_a_request_to_stop_a_second_one_ends_the_run(name):
  once = _run("stop", name, "once")
  assert once.returncode == 0, once.stderr
  assert once.stdout == "still running True True\nhandlers restored True\n"
  twice = _run("stop", name, "twice")
  assert twice.stdout == "still running True True\n", twice.stdout
  # Killed by the signal (Python ends an uncaught KeyboardInterrupt by re-raising SIGINT).
  assert twice.returncode == -getattr(signal, name), twice.stderr
  assert ("KeyboardInterrupt" in twice.stderr) == (name == "SIGINT")


def test_a_sigint_during_slow_imports_waits_for_the_block_to_end():
  result = _run("defer", "SIGINT")
  assert result.returncode == 0, result.stderr
  assert result.stdout == "block finished\nKeyboardInterrupt after the block\n"
