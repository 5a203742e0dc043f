"""Ctrl-C during training: stop at a safe point, and never half-way through building env workers.

:class:`StopFlag` turns the first SIGINT into a request the training loop polls
(it then saves a checkpoint and returns); a second one interrupts at once.
:func:`sigint_deferred` blocks SIGINT for a while (env workers start), so a
Ctrl-C meanwhile is delivered once the block ends instead of being lost.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator


class StopFlag:
    """First Ctrl-C asks the loop to stop at a safe point; a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._old = None

    def _handler(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def install(self) -> None:
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self._old = None

    def uninstall(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def __call__(self) -> bool:
        return self.set


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """SIGINT blocked in this thread inside the block, delivered after it (no-op where not POSIX)."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
