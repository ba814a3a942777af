"""SIGTERM (preemption, `scancel`, `kill`) and SIGINT (Ctrl-C) become a request to stop.

The loop sees the request at its next step, saves a checkpoint and returns; a second Ctrl-C
interrupts at once (the last checkpoint on disk stays intact: orbax writes atomically).
"""

from __future__ import annotations

import signal
import threading

from jaxvision import interrupts


class StopRequests:
    """A context manager that records SIGTERM / SIGINT instead of dying on them."""

    def __init__(self):
        # A SIGTERM that came before the loop and whose exception was dropped still stops it.
        self.signal_name: str | None = interrupts.pending
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequests":
        # Signal handlers can only be installed from the main thread; elsewhere (a notebook's
        # worker thread) signals keep their usual meaning.
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
