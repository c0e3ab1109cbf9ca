"""Watched bodies reach kopf without managedFields (the per-object memory kopf keeps)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kopf._cogs.clients import watching
from kopf._core.reactor import queueing

from barrack_operator.handlers import lean_bodies


def test_kopf_calls_the_watch_stream_through_the_seam_the_wrapper_replaces() -> None:
    # If a kopf release stops calling watching.infinite_watch by attribute, the wrapper would
    # silently do nothing: this fails first.
    assert queueing.watching is watching
    assert callable(watching.infinite_watch)


def test_events_arrive_without_managed_fields_and_the_stream_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[bool] = []
    events: list[Any] = [
        {
            "type": "ADDED",
            "object": {
                "metadata": {
                    "name": "a",
                    "managedFields": [{"manager": "kubectl"}],
                    "annotations": {lean_bodies.LAST_APPLIED: "{...}", "barrack.ai/paused": "true"},
                }
            },
        },
        {"type": "MODIFIED", "object": {"metadata": {"name": "a"}, "status": {"id": "BRK-1V"}}},
        watching.Bookmark.LISTED,
        {"type": "ERROR", "object": {"code": 410}},
    ]

    async def upstream(**_: Any) -> Any:
        try:
            for event in events:
                yield event
            await asyncio.sleep(3600)  # a watch that stays open until its consumer stops
        finally:
            closed.append(True)

    monkeypatch.setattr(watching, "infinite_watch", upstream)
    assert lean_bodies.install()
    wrapped = watching.infinite_watch
    assert wrapped is not upstream
    assert lean_bodies.install()
    assert watching.infinite_watch is wrapped  # twice wraps once

    async def consume() -> list[Any]:
        seen = []
        stream = queueing.watching.infinite_watch(settings=None)
        async for event in stream:
            seen.append(event)
            if len(seen) == len(events):
                break
        await stream.aclose()
        return seen

    seen = asyncio.run(consume())
    assert seen[0] == {
        "type": "ADDED",
        "object": {"metadata": {"name": "a", "annotations": {"barrack.ai/paused": "true"}}},
    }
    assert seen[1]["object"]["status"] == {"id": "BRK-1V"}
    assert seen[2] is watching.Bookmark.LISTED
    assert seen[3] == {"type": "ERROR", "object": {"code": 410}}
    assert closed == [True]
