"""Progress of a long command, a line per kind: on a terminal the lines are redrawn in place as
the counts move; otherwise (a log, a pipe) a plain line is written when a kind's count moves, at
most every ``every`` seconds and always at its end; with ``quiet`` (``-o json``) nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

UP_AND_CLEAR = "\033[F\033[K"


class Progress:
    def __init__(
        self,
        stream: TextIO = sys.stderr,
        *,
        quiet: bool = False,
        tty: bool | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty() if tty is None else tty
        self.every = every
        self._clock = clock
        self.counts: dict[str, tuple[int, int, str]] = {}
        """Per kind: done, total, and what is being done (``listed``, ``applied`` ...)."""
        self._drawn = 0
        self._written: dict[str, tuple[int, float]] = {}

    def update(self, kind: str, done: int, total: int, doing: str = "done") -> None:
        if self.counts.get(kind) == (done, total, doing):
            return
        self.counts[kind] = (done, total, doing)
        if self.quiet:
            return
        if self.tty:
            self._redraw()
        else:
            self._plain(kind, done, total, doing)

    @staticmethod
    def line(kind: str, done: int, total: int, doing: str) -> str:
        return f"{kind}: {done}/{total} {doing}" if total else f"{kind}: {done} {doing}"

    def _redraw(self) -> None:
        self.stream.write(UP_AND_CLEAR * self._drawn)
        for kind, (done, total, doing) in self.counts.items():
            self.stream.write(self.line(kind, done, total, doing) + "\n")
        self._drawn = len(self.counts)
        self.stream.flush()

    def _plain(self, kind: str, done: int, total: int, doing: str) -> None:
        now = self._clock()
        last = self._written.get(kind)
        finished = total and done >= total
        if last is not None and not finished and now - last[1] < self.every:
            return
        if last is not None and last[0] == done and not finished:
            return
        self._written[kind] = (done, now)
        self.stream.write(self.line(kind, done, total, doing) + "\n")
        self.stream.flush()
