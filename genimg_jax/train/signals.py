"""SIGINT / SIGTERM become a request to stop after the dispatch in flight (and save)."""

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
  """Context manager: while active, the first SIGINT/SIGTERM sets `signum` instead of killing.

  A second signal of the same kind gets the default behaviour back (an impatient user can
  still kill the run at once).
  """

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self.signum = signum
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      return self  # Only the main thread may install handlers; signals then act as usual.
    for signum in STOP_SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    return False


class DeferredInterrupt:
  """Context manager around slow imports: a SIGINT inside it is held and re-raised as
  KeyboardInterrupt on exit. Raised mid-import, it can surface as another error (numpy turns
  it into an ImportError), which would end in a traceback instead of one line."""

  def __init__(self):
    self._received = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    self._received = True

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGINT, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGINT, self._previous)
    if self._received:
      raise KeyboardInterrupt
    return False
