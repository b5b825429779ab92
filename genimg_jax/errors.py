"""User-facing errors: one clear line on stderr and a non-zero exit, never a traceback."""

import functools
import sys


class UserError(Exception):
  """A problem the user can fix: the message says what is wrong and what to do."""

  exit_code = 2


def exit_on_user_error(main):
  """Wraps a CLI entry point so a UserError ends in one line on stderr and exit code 2."""

  @functools.wraps(main)
  def wrapper(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except UserError as e:
      message = " ".join(str(e).split())  # Exactly one line.
      print(f"error: {message}", file=sys.stderr, flush=True)
      sys.exit(e.exit_code)

  return wrapper
