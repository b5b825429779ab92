"""User-facing errors: one clear line on stderr and a non-zero exit, never a traceback."""

import contextlib
import contextvars
import functools
import logging
import os
import signal
import sys
import threading


class UserError(Exception):
  """A problem the user can fix: the message says what is wrong and what to do."""

  exit_code = 2
  prefix = "error"


class NonFiniteError(UserError):
  """Training produced a NaN/Inf loss or gradient norm; the last good checkpoint is kept."""

  exit_code = 3


class PeerLost(UserError):
  """A process of a multi-process run stopped responding: exit 75 (EX_TEMPFAIL, run again).

  The exit skips the interpreter's exit handlers: JAX's would wait at the coordination
  service's shutdown barrier for the dead process until its heartbeat times out, then abort
  the survivor with a C++ fatal log. Every file was closed on the way out (finally blocks).
  """

  exit_code = 75
  skip_exit_handlers = True


class Interrupted(UserError):
  """SIGINT/SIGTERM stopped the run after saving a checkpoint: exit 128 + signal number."""

  prefix = "stopped"

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.exit_code = 128 + signum


_FLAG_NAMES = contextvars.ContextVar("flag_names", default=None)


def flag(key: str, value: str = "VALUE") -> str:
  """How a message tells the user to set config `key`: train.py's `--config.KEY=VALUE`, or,
  inside `flag_names`, the flag the running CLI takes for it (evaluate's `--cache_dir DIR`).

  The evaluation helpers run under both train.py and `python -m genimg_jax.evaluate`, whose
  flags differ; a key the CLI did not name is a KeyError, caught by the tests of its messages.
  """
  names = _FLAG_NAMES.get()
  if names is None:
    return f"--config.{key}={value}"
  return f"{names[key]} {value}"


@contextlib.contextmanager
def flag_names(names: dict[str, str]):
  """Within: `flag(key)` names the flag `names[key]` (a CLI's own flag for config `key`)."""
  token = _FLAG_NAMES.set(names)
  try:
    yield
  finally:
    _FLAG_NAMES.reset(token)


VERBOSE_ENV = "GENIMG_VERBOSE"  # Set to 1 to see the libraries' own logs and thread errors.


def _quiet_library_errors() -> None:
  """Keeps library noise off stderr so a failure reads as our one line.

  Orbax logs each failed write with a traceback (absl logger); writer threads (Orbax,
  tensorboardX) die with OSError on a full disk; TensorStore callbacks of an aborted save
  report "Event loop is closed" as unraisable exceptions. The main thread reports the failure
  itself as a UserError. Every other exception still prints.
  """
  if os.environ.get(VERBOSE_ENV) == "1":
    return
  logging.getLogger("absl").setLevel(logging.CRITICAL)
  default_hook = threading.excepthook

  def hook(args):
    if not issubclass(args.exc_type, OSError):
      default_hook(args)

  threading.excepthook = hook
  default_unraisablehook = sys.unraisablehook

  def unraisablehook(unraisable):
    if "Event loop is closed" not in str(unraisable.exc_value):
      default_unraisablehook(unraisable)

  sys.unraisablehook = unraisablehook


def exit_on_user_error(main):
  """Wraps a CLI entry point so a UserError ends in one line on stderr and its exit code.

  Once the line is flushed, stderr is pointed at /dev/null: background threads of Orbax and
  TensorStore may still hold failed futures, and the interpreter's shutdown would print their
  tracebacks after our one line. Exit handlers still run.
  """

  @functools.wraps(main)
  def wrapper(*args, **kwargs):
    _quiet_library_errors()
    try:
      return main(*args, **kwargs)
    except KeyboardInterrupt:  # Ctrl-C before the training loop took over the signal.
      e = Interrupted("SIGINT before training started: nothing to save", signal.SIGINT)
      _exit_with_line(e)
    except UserError as e:
      _exit_with_line(e)

  return wrapper


def _exit_with_line(e: UserError) -> None:
  """Prints `e` as one line on stderr, silences what shutdown might print, exits with its code."""
  message = " ".join(str(e).split())  # Exactly one line.
  print(f"{e.prefix}: {message}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  if os.environ.get(VERBOSE_ENV) != "1":
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stderr.fileno())
  if getattr(e, "skip_exit_handlers", False):
    os._exit(e.exit_code)  # pylint: disable=protected-access  # See PeerLost.
  sys.exit(e.exit_code)
