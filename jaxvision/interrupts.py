"""SIGTERM outside the training loop (start-up, data preparation, a report): stop at once.

Python raises a signal handler's exception wherever the main thread happens to be. Inside a
`__del__` or a garbage-collector callback (jax installs one) it cannot propagate: Python hands it
to `sys.unraisablehook`, which would print a traceback, and the run would go on. So the signal is
also recorded here: that traceback is held back, the training loop starts already asked to stop
(it saves, then returns), and `main` answers with the resume code even for a run that got to its
end. Free of imports beyond the standard library, so the command line can install it first.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

pending: str | None = None  # the name of the SIGTERM that came outside the loop, once one has


class StoppedOutsideAStep(BaseException):
    """A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""


def _stop_at_once(signum, frame) -> None:
    global pending
    pending = signal.Signals(signum).name
    raise StoppedOutsideAStep(pending)


@contextlib.contextmanager
def stop_at_once():
    """Within it SIGTERM raises StoppedOutsideAStep (main thread only: elsewhere signals keep
    their meaning); the previous handlers come back after."""
    global pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_hook = sys.unraisablehook

    def hold_back_ours(unraisable):
        if not isinstance(unraisable.exc_value, StoppedOutsideAStep):
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGTERM, _stop_at_once)
    sys.unraisablehook = hold_back_ours
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        pending = None  # a later fit in this process (a notebook, the tests) starts unasked
