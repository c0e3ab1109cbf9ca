"""Progress lines: redrawn in place on a terminal, plain and few otherwise, none when quiet."""

from __future__ import annotations

import io

from barrack_operator.progress import UP_AND_CLEAR, Progress


def test_a_terminal_gets_a_line_per_kind_redrawn_in_place() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress.update("volumes", 1, 3, "created")
    progress.update("instances", 0, 2, "created")
    progress.update("volumes", 2, 3, "created")
    drawn = out.getvalue().split(UP_AND_CLEAR * 2)[-1]
    assert drawn == "volumes: 2/3 created\ninstances: 0/2 created\n", "the last drawing has each kind once"


def test_a_log_gets_plain_lines_at_most_every_interval_and_at_each_end() -> None:
    out, now = io.StringIO(), [0.0]
    progress = Progress(out, tty=False, every=5.0, clock=lambda: now[0])
    for n in range(1, 101):
        now[0] = n * 0.1
        progress.update("volumes", n, 100, "created")
    progress.update("ssh keys", 4, 4, "listed")
    assert UP_AND_CLEAR not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "volumes: 1/100 created", "volumes: 51/100 created", "volumes: 100/100 created", "ssh keys: 4/4 listed",
    ]  # fmt: skip


def test_quiet_writes_nothing() -> None:
    out = io.StringIO()
    Progress(out, quiet=True, tty=True).update("volumes", 1, 1)
    assert out.getvalue() == ""
