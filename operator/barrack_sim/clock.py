"""The simulator's clock: real monotonic time plus an offset that tests can push forward."""

from __future__ import annotations

import time


class SimClock:
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
