"""Barrack's clock, as the ``Date`` header of its replies tells it.

Barrack bills by its own clock, so the operator keeps its business time on it: power-schedule
windows, lifetimes, the month's accrual. A reply's ``Date`` is whole seconds, so the reading is
taken as the middle of that second and moves only when it differs from the one held by more than
:data:`TOLERANCE` (a reply's time in flight and the header's rounding are not a change). Until a
reply comes it reads this machine's clock. A move of more than :data:`JUMP` is a jump (the
simulator's clock pushed forward, or this machine's clock corrected): listeners are told at once,
so that what waits for a moment on Barrack's clock looks again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

TOLERANCE = 2.0
"""Seconds a reading may differ from the one held before the offset moves."""
JUMP = 30.0
"""Seconds of a move that tell the listeners."""


class BarrackClock:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self.offset = 0.0
        """Barrack's time minus this machine's, in seconds."""
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall() + self.offset, UTC)

    def listen(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(seconds)`` with the size of each jump, as it is seen."""
        self._listeners.append(listener)

    def observe(self, date: str | None) -> None:
        """One reply's ``Date`` header (ignored when absent or not a date)."""
        if not date:
            return
        try:
            told = parsedate_to_datetime(date).timestamp() + 0.5
        except (TypeError, ValueError):
            return
        offset = told - self._wall()
        moved = offset - self.offset
        if abs(moved) <= TOLERANCE:
            return
        self.offset = offset
        if abs(moved) > JUMP:
            log.info("Barrack's clock moved by %.0f s; business time follows it", moved)
            for listener in self._listeners:
                listener(moved)
