"""Looks: reads of only the pages of a listing that hold what moves, what a pass waits to see and
what was just made (see :mod:`barrack_operator.inventory`). A look updates what it shows and never
concludes that a resource is gone; a resource it looked for and did not find asks for a listing."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable

from barrack_operator.barrack import BarrackClient, BarrackError
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.client import PAGE_LIMIT
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.listings import ListingHealth, Snapshot, T, cover, moves

log = logging.getLogger(__name__)


class PageLooks:
    """The looks of an :class:`~barrack_operator.inventory.Inventory` (its base: the state named
    here is the inventory's)."""

    PEEK_PAGES = 3
    """At most this many pages in one look at a kind; what is beyond waits for the next."""

    client: BarrackClient
    used: set[str]
    health: dict[str, ListingHealth]
    look_pages: dict[str, int]
    _clock: Callable[[], float]
    _peeked: dict[str, float]
    _awaited: dict[str, Counter[str]]
    _on_its_way: dict[str, set[str]]
    _polled: asyncio.Condition

    def nudge(self, kinds: Iterable[str] | None = None) -> None:
        raise NotImplementedError

    def lookable(self, kind: str) -> bool:
        raise NotImplementedError

    def _windows(self, kind: str, wanted: dict[str, int | None]) -> list[tuple[int, int]]:
        """The reads of a look, as (page, limit): together they cover the positions where a read
        last placed the resources looked for and, when some are not placed yet (new: Barrack lists
        in creation order), as many positions from the end of the listing on; the end first, then
        the newest."""
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        placed = {at for at in wanted.values() if at is not None}
        unplaced = sum(1 for at in wanted.values() if at is None)
        tail = set(range(snapshot.end, snapshot.end + min(unplaced, PAGE_LIMIT)))
        windows = cover(placed | tail, first=snapshot.end if tail else None)
        return sorted(
            windows, key=lambda w: (bool(tail) and w[0] * w[1] > snapshot.end, w[0] * w[1]), reverse=True
        )

    def _wants_peek(self, kind: str) -> bool:
        """A look is worth it: the kind is in use, listed, not failing, and something of it moves, is
        awaited or is new."""
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        return (
            kind in self.used
            and self.lookable(kind)
            and not self.health[kind].failures
            and (bool(self._awaited[kind] or self._on_its_way[kind]) or snapshot.transitional(kind))
        )

    async def peek(self, kind: str) -> tuple[set[str], int]:
        """Read only the pages that hold the kind's moving and awaited resources (the end first,
        then the newest, at most PEEK_PAGES) and fold what they show into the index; returns the
        ids that changed and the pages read. A look never drops a resource (one missing from its
        page may have moved to another when one before it went) and a failed look is only logged:
        the kind's health and whatever is concluded from absence are its listings'."""
        started = self._peeked[kind] = self._clock()
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        wanted = self._looked_for(kind)
        windows = self._windows(kind, wanted)
        changed: set[str] = set()
        read: list[range] = []
        ended = False
        try:
            while windows and len(read) < self.PEEK_PAGES:
                page, limit = windows.pop(0)
                full = await self._read_page_into(snapshot, kind, page, changed, limit)
                read.append(range((page - 1) * limit, page * limit))
                if page * limit >= snapshot.end:  # the read reached the end of the listing
                    if full:
                        windows.insert(0, (page + 1, limit))  # which may go on beyond it
                    else:
                        ended = True
        except (BarrackError, MissingApiKey) as error:
            log.info("A look at Barrack's moving %s failed (their listing will tell): %s", kind, error)
        if self._missed(snapshot, wanted, started, read, ended):
            log.debug("A look at Barrack's %s missed a resource it looked for; listing them", kind)
            self.nudge([kind])  # gone, or Barrack's order moved it: the listing says which
        async with self._polled:
            self._polled.notify_all()
        return changed, len(read)

    def _looked_for(self, kind: str) -> dict[str, int | None]:
        """The kind's moving, awaited and new resources, and where a read last placed each."""
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        ids = snapshot.moving(kind) | self._awaited[kind].keys() | self._on_its_way[kind]
        return {i: snapshot.position.get(i) for i in ids if i in snapshot.items}

    @staticmethod
    def _missed(
        snapshot: Snapshot[T], wanted: dict[str, int | None], started: float, read: list[range], ended: bool
    ) -> bool:
        """A resource looked for was not where it was placed (or, new, at the end) though a read
        covered that place: it went, or Barrack does not list in creation order."""
        for item_id, at in wanted.items():
            if (
                snapshot.seen.get(item_id, -math.inf) >= started
                or snapshot.recorded.get(item_id, -math.inf) >= started
            ):
                continue  # shown, or a reply newer than the look was kept instead of its page
            if (at is not None and any(at in window for window in read)) or (at is None and ended):
                return True
        return False

    async def _read_page_into(
        self, snapshot: Snapshot[T], kind: str, page: int, changed: set[str], limit: int = PAGE_LIMIT
    ) -> bool:
        """Fold one page of ``limit`` into ``snapshot``: what changed goes in ``changed``; True when
        the page is full (the next may hold more)."""
        asked = self._clock()
        items = await self.client.read_page(kind, page, limit)
        self.look_pages[kind] += 1
        first = (page - 1) * limit
        for at, item in enumerate(items, start=first):
            snapshot.position[item.id] = at
            if snapshot.recorded.get(item.id, -math.inf) >= asked:
                continue  # a mutation's reply came after the page was asked for: it is newer
            if snapshot.items.get(item.id) != item:
                snapshot.items[item.id] = item
                changed.add(item.id)
            snapshot.seen[item.id] = asked
            if not moves(kind, item):
                self._on_its_way[kind].discard(item.id)
        snapshot.end = max(snapshot.end, first + len(items))
        return len(items) >= limit
