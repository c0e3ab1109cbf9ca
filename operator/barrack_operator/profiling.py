"""Where the operator's memory goes, for the benchmark: with ``BARRACK_MEMORY_PROFILE=<file>`` the
process traces its allocations from the start (tracemalloc) and, on each SIGUSR2, appends the
biggest holders by source line to that file (with the traced total and its peak so far). Off by
default: tracing costs memory and time."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

PROFILE_VARIABLE = "BARRACK_MEMORY_PROFILE"
TOP = 40


def install() -> None:
    path = os.environ.get(PROFILE_VARIABLE)
    if not path:
        return
    tracemalloc.start(1)

    def dump(signum: int, frame: FrameType | None) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            ]
        )
        stats = snapshot.statistics("lineno")
        total = sum(stat.size for stat in stats)
        peak = tracemalloc.get_traced_memory()[1]
        lines = [f"total_traced_mb {total / 2**20:.1f} peak_traced_mb {peak / 2**20:.1f}"]
        lines += [
            f"{stat.size / 2**20:9.2f} MB {stat.count:9d} blocks  {stat.traceback[0]}" for stat in stats[:TOP]
        ]
        with Path(path).open("a") as out:
            out.write("\n".join(lines) + "\n\n")

    signal.signal(signal.SIGUSR2, dump)
