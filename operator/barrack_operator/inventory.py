"""The shared cloud inventory: paginated listings of each kind, and looks at the pages that hold
what moves, read by every reconcile.

Steady objects cost no Barrack call of their own: they read this index. Each kind is listed whole
on a slow schedule (stretched so that a large account's listings take a bounded share of the rate
limit); in between, what moves is *looked at*: only the windows of the listing that hold the
kind's transitional resources, those a reconcile waits to see after its calls, and those just made
(at the end of the listing: Barrack lists in creation order), every fast interval, or four times
as often while the rate limit has slots to spare. A window is a page of any limit up to 100 (see
:func:`cover`): resources on both sides of a hundred are one read. A look updates what it shows
and never concludes that a resource is gone (one before it may have gone, and the rest moved up a
place); a resource it looked for and did not find asks for a whole listing, which does. A kind
of one page is simply listed. After each listing or look the poller reports the ids whose
resource changed (or vanished), so the objects that care are woken at once rather than at their
next timer.

A listing that fails (Barrack down, a key refused, a reply that does not parse, a bug) never stops
the poller: the error is kept per kind, counted, and the kind is listed again with exponential
backoff. Each kind's health is its own: a create or a release of a finalizer of that kind is
decided only from a listing of that kind that succeeded (:meth:`Inventory.require_fresh`). A
failed look is only logged: the next listing tells.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from barrack_operator.barrack import BarrackClient, BarrackError
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.client import PAGE_LIMIT
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.listings import (
    KIND_OF,
    InventoryClosed,
    Item,
    ListingError,
    ListingFailed,
    ListingHealth,
    Snapshot,
    error_reason,
    moves,
)
from barrack_operator.looks import PageLooks
from barrack_operator.waiting import wait_event

log = logging.getLogger(__name__)
OnChange = Callable[[set[str]], Awaitable[None] | None]


class Inventory(PageLooks):
    KINDS = ("volumes", "instances", "firewalls", "ssh_keys", "scripts", "snapshots", "images")
    UNUSED_FACTOR = 10
    """A kind no object uses (:meth:`use`) is listed only every UNUSED_FACTOR slow intervals: the
    account's burn counts it, nothing waits on it, and an account of volumes alone pays no call
    per poll for its other kinds."""
    LISTING_SHARE = 0.25
    """At most this share of the rate limit goes to listings (all kinds together); a large account
    is listed less often."""
    LISTING_SHARE_QUEUED = 0.01
    """The share while the rate limit is saturated (a second of calls queued): the calls are the
    work and looks report it; whole listings only find what went or changed behind the
    operator's back (at 2,000 volumes, one every 100 s)."""
    LISTING_SHARE_MOVING = 0.5
    """The share for listings (and looks) while the rate limit is not saturated: its slots are
    free, pages go one after another (a call that comes waits for one page at most)."""
    PEEK_SHARE = 0.05
    """The share of the rate limit for looks (all kinds together) while it is saturated: a look
    every fast interval while its pages fit in this share, less often beyond (at 2,000 volumes one
    or two pages every 2 s: p99 from a transition to its condition 2.1 s instead of 25 s)."""
    QUICK_LOOKS = 4
    """While no call waits for the rate limit, a kind with a resource that this operator's calls
    changed still on its way is looked at QUICK_LOOKS times per fast interval, for QUICK_LOOKS
    fast intervals after its last call (the end of a burst is seen within half a second at a 2 s
    fast interval; an instance that takes minutes to come up is looked at every fast interval);
    a resource a pass waits to see is looked at so as long as it waits."""

    def __init__(
        self,
        client: BarrackClient,
        *,
        fast_interval: float = 2.0,
        slow_interval: float = 30.0,
        on_change: OnChange | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.fast_interval = fast_interval
        self.slow_interval = slow_interval
        self._on_change = on_change
        self._clock = clock
        self.volumes: Snapshot[wire.Volume] = Snapshot()
        self.instances: Snapshot[wire.VMInstance] = Snapshot()
        self.firewalls: Snapshot[wire.Firewall] = Snapshot()
        self.ssh_keys: Snapshot[wire.SSHKey] = Snapshot()
        self.scripts: Snapshot[wire.Script] = Snapshot()
        self.snapshots: Snapshot[wire.Snapshot] = Snapshot()
        self.images: Snapshot[wire.CustomImage] = Snapshot()
        self.used: set[str] = set()
        """The kinds objects use (their own, and those they read): listed on the usual schedule."""
        self.health: dict[str, ListingHealth] = {kind: ListingHealth() for kind in self.KINDS}
        self.error_counts: dict[tuple[str, str], int] = {}
        """Failed listings by (kind, reason), for ``barrack_inventory_errors_total``."""
        self._polled = asyncio.Condition()
        self._nudge = asyncio.Event()
        self._wanted: set[str] = set()
        self._closely: set[str] = set()
        """Kinds listed whole at the fast interval even while steady (see :meth:`watch_closely`)."""
        self._due: dict[str, float] = dict.fromkeys(self.KINDS, 0.0)
        self._peeked: dict[str, float] = dict.fromkeys(self.KINDS, 0.0)
        self._next_peek = 0.0
        self._on_its_way: dict[str, set[str]] = {kind: set() for kind in self.KINDS}
        """Resources a mutation's reply recorded that no read has shown settled since."""
        self._last_call: dict[str, float] = dict.fromkeys(self.KINDS, -math.inf)
        """When a call last changed a resource of the kind."""
        self._awaited: dict[str, Counter[str]] = {kind: Counter() for kind in self.KINDS}
        """Resources a caller of :meth:`wait_fresh` waits to see, by kind: a look reads their pages."""
        self.polled_once = asyncio.Event()
        self.closed = False
        """The account stopped (see :meth:`close`): nothing waits on this inventory any more."""
        self.look_pages: dict[str, int] = dict.fromkeys(self.KINDS, 0)
        """Pages read by looks at moving resources, by kind (``barrack_inventory_look_reads_total``)."""

    # Reads ---------------------------------------------------------------------------------------

    def age(self, kind: str) -> float | None:
        """Seconds since the last successful listing of ``kind``; None while none has succeeded."""
        finished = self.health[kind].last_success
        return None if finished is None else self._clock() - finished

    def listing_error(self, kind: str) -> ListingError | None:
        """Why the last listing of ``kind`` failed; None when it succeeded."""
        return self.health[kind].error

    def require_fresh(self, kind: str) -> None:
        """Raise the listing error of ``kind`` unless its last listing succeeded: a create or a
        release of a finalizer must never be decided on a view that Barrack did not just confirm."""
        health = self.health[kind]
        if health.error is not None:
            raise health.error
        if not getattr(self, kind).ok:
            raise ListingFailed(f"Barrack's {kind.replace('_', ' ')} have not been listed yet")

    def failing_for(self, kind: str) -> int:
        """Failed listings of ``kind`` in a row."""
        return self.health[kind].failures

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds in use, in a stable order: those whose listings readiness and metrics judge."""
        return tuple(kind for kind in self.KINDS if kind in self.used)

    def use(self, kind: str) -> bool:
        """List ``kind`` on the usual schedule from now on (an object of it, or one that reads it,
        appeared); True when it was not in use."""
        if kind in self.used:
            return False
        self.used.add(kind)
        self._due[kind] = 0.0
        self._nudge.set()
        return True

    def nudge(self, kinds: Iterable[str] | None = None) -> None:
        """Ask for a listing of these kinds (default: all in use) soon: after a mutation, or when an
        object waits on a transition. Nudges within one fast interval are gathered into one listing."""
        for kind in () if kinds is None else kinds:
            self.use(kind)
        self._wanted.update(self.kinds if kinds is None else kinds)
        self._nudge.set()

    def watch_closely(self, kind: str, closely: bool) -> None:
        """List the kind whole at the fast interval (not the slow one) while ``closely``: when
        Barrack may change its resources on its own any moment (an account about to run out of
        credit, whose instances Barrack then hibernates), so that the change shows within one fast
        poll. Turned on, the kind is listed soon."""
        if closely and kind not in self._closely:
            self._closely.add(kind)
            self.nudge([kind])
        elif not closely:
            self._closely.discard(kind)

    def closely(self, kind: str) -> bool:
        """The kind is listed at the fast interval while steady (see :meth:`watch_closely`)."""
        return kind in self._closely

    def touched(self, kinds: Iterable[str]) -> None:
        """A mutation changed resources of these kinds: a kind listed before is looked at soon (what
        changed is moving, awaited or new at its end), any other listed."""
        self.nudge([kind for kind in kinds if not self.lookable(kind)])  # wakes the poller either way

    def expect(self, ids: Iterable[str]) -> None:
        """Calls just changed these resources: look at them until a read shows each settled (a rule
        added or an attach leaves no transitional state to look for)."""
        for item_id in ids:
            for kind in self.KINDS:
                if item_id in getattr(self, kind).items:
                    self._on_its_way[kind].add(item_id)
                    self._last_call[kind] = self._clock()
        self._nudge.set()

    def lookable(self, kind: str) -> bool:
        """The kind has been listed: a look has positions to go by (see :meth:`peek`)."""
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        return snapshot.ok

    def record(self, item: Item) -> None:
        """Fold a resource a mutation returned into the index, so the next read sees it (and a
        listing begun before the mutation, which cannot show it, does not drop it)."""
        kind = KIND_OF[type(item)]
        snapshot = getattr(self, kind)
        snapshot.items[item.id] = item
        snapshot.recorded[item.id] = self._clock()
        self._on_its_way[kind].add(item.id)
        self._last_call[kind] = self._clock()
        self.touched([kind])

    async def listed_once(self, kind: str) -> None:
        """Use ``kind`` from now on, and wait until it has a listing as fresh as a used kind's:
        one younger than the slow interval, or one begun since it is in use (or a failed one: the
        caller reads the listing's health)."""
        since = self._clock()
        newly = self.use(kind)
        await self.polled_once.wait()
        self._raise_if_closed()
        age = self.age(kind)
        recent = age is not None and age < self.slow_interval  # as fresh as a used kind's listing
        if (recent or not newly) and (getattr(self, kind).ok or self.health[kind].error is not None):
            return
        with contextlib.suppress(BarrackError, MissingApiKey, ListingFailed):
            await self.wait_fresh(since if newly else -1.0, kinds=[kind])

    async def wait_fresh(
        self,
        since: float,
        timeout: float = 120.0,
        kinds: Iterable[str] | None = None,
        ids: Iterable[str] = (),
    ) -> None:
        """Wait until these kinds (default: all) have been listed by a poll that started after
        ``since``; a create after an ambiguous failure must see Barrack as it is now before it
        repeats itself. For a kind that holds some of ``ids``, a look at their pages asked for after
        ``since`` that showed them all will do too (what a caller changed is seen changed; nothing
        is concluded gone from a page). A listing of one of them begun after ``since`` that failed
        raises its error, and so does waiting past ``timeout``: the caller must not decide blind."""
        wanted = tuple(self.kinds if kinds is None else kinds)
        awaited = {k: [i for i in ids if i in getattr(self, k).items] for k in wanted}
        self.nudge([k for k in wanted if not (awaited[k] and self.lookable(k))])  # wakes the poller

        def fresh(kind: str) -> bool:
            snapshot: Snapshot[wire.Volume] = getattr(self, kind)
            if snapshot.ok and snapshot.started_at > since:
                return True
            mine = awaited[kind]
            return bool(mine) and all(snapshot.shown_since(i, since) for i in mine)

        def settled() -> bool:
            return self.closed or all(
                fresh(k) or (self.health[k].error is not None and self.health[k].last_attempt > since)
                for k in wanted
            )

        for kind, mine in awaited.items():
            self._awaited[kind].update(mine)
        try:
            async with self._polled:
                try:
                    async with asyncio.timeout(timeout):  # not wait_for: see barrack_operator.waiting
                        await self._polled.wait_for(settled)
                except TimeoutError:
                    raise ListingFailed(f"no listing of {', '.join(wanted)} within {timeout:.0f}s") from None
        finally:
            for kind, mine in awaited.items():
                self._awaited[kind].subtract(mine)
                self._awaited[kind] = +self._awaited[kind]
        self._raise_if_closed()
        for kind in wanted:
            if not fresh(kind):
                error = self.health[kind].error
                assert error is not None
                raise error

    async def close(self) -> None:
        """The account stops: every pass waiting on this inventory (its first poll, a fresh
        listing) is released with :class:`InventoryClosed`, never left waiting on a poller that
        is gone."""
        self.closed = True
        self.polled_once.set()
        async with self._polled:
            self._polled.notify_all()

    def _raise_if_closed(self) -> None:
        if self.closed:
            raise InventoryClosed("the account's inventory was closed; the pass starts again")

    # Polling -------------------------------------------------------------------------------------

    async def poll_once(self, kinds: Iterable[str] | None = None) -> set[str]:
        """List these kinds (default: all); returns the ids that changed or vanished since the
        previous listing of their kind."""
        changed: set[str] = set()
        for kind in self.KINDS if kinds is None else kinds:
            started = self._clock()
            log.debug("Listing Barrack's %s", kind)
            health = self.health[kind]
            health.last_attempt = started
            self._peeked[kind] = started  # a listing is a look at every page
            try:
                items = {item.id: item async for item in self.client.iter_listing(kind)}
            except (BarrackError, MissingApiKey) as error:
                log.warning("Barrack inventory poll of %s failed: %s", kind, error)
                self._failed(kind, error)
                continue
            except Exception as exc:  # a bug must not end the poller: count it, back off, go on
                log.exception("Barrack inventory poll of %s failed unexpectedly", kind)
                self._failed(kind, ListingFailed(f"the operator failed to list {kind}: {type(exc).__name__}"))
                continue
            previous: Snapshot[wire.Volume] = getattr(self, kind)
            # A resource a mutation's reply recorded after this listing began, and that the
            # listing does not show (its page was read before), stays until a listing begun after
            # it says otherwise: without that, every object created during a paged listing would
            # vanish from the index and read Barrack again.
            newer = {
                i: at
                for i, at in previous.recorded.items()
                if at >= started and i in previous.items and i not in items
            }
            position = {item_id: at for at, item_id in enumerate(items)}
            for item_id in newer:
                items[item_id] = previous.items[item_id]
            for item_id in previous.items.keys() | items.keys():
                if previous.items.get(item_id) != items.get(item_id):
                    changed.add(item_id)
            listed = Snapshot(items=items, started_at=started, ok=True, recorded=newer, position=position)
            listed.end = len(position)
            setattr(self, kind, listed)
            self._on_its_way[kind] = {
                i for i in self._on_its_way[kind] if i in items and moves(kind, items[i])
            }
            if health.failures:
                log.info("Barrack inventory poll of %s recovered after %d failures", kind, health.failures)
            health.error, health.failures, health.last_success = None, 0, self._clock()
        self.polled_once.set()
        async with self._polled:
            self._polled.notify_all()
        return changed

    def _failed(self, kind: str, error: ListingError) -> None:
        health = self.health[kind]
        health.error, health.failures = error, health.failures + 1
        key = (kind, error_reason(error))
        self.error_counts[key] = self.error_counts.get(key, 0) + 1

    def retry_gap(self, kind: str) -> float:
        """The wait before listing a failing kind again: the fast interval, doubling with each
        failure in a row, at most the slow interval."""
        failures = self.health[kind].failures
        return float(min(self.slow_interval, self.fast_interval * 2 ** max(0, min(failures - 1, 20))))

    def pages_in_use(self, kind: str) -> int:
        """Pages a listing of ``kind`` and of every kind in use takes now."""
        return sum(max(1, math.ceil(len(getattr(self, k).items) / PAGE_LIMIT)) for k in {kind, *self.used})

    def fast_gap(self, kind: str) -> float:
        """The least time between two listings of a kind: the fast interval, stretched so that
        listing every kind in use (of a large account) takes no more than LISTING_SHARE_MOVING of
        the rate limit in all, LISTING_SHARE_QUEUED while the rate limit is saturated (each kind's
        own share would add up: a mixed account lists three or four kinds at once)."""
        return self._gap(kind, self.fast_interval, self.LISTING_SHARE_MOVING)

    def slow_gap(self, kind: str) -> float:
        """The time between two listings of a steady kind: the slow interval, stretched so that
        listing a very large account takes no more than LISTING_SHARE of the rate limit (10,000
        volumes are 100 pages: every 10 s that would be half of 20 requests a second, taken from
        the creates that wait for it), and no more than LISTING_SHARE_QUEUED while the rate limit
        is saturated (a steady kind is not listed more often than a moving one then)."""
        return self._gap(kind, self.slow_interval, self.LISTING_SHARE)

    def _gap(self, kind: str, interval: float, share: float) -> float:
        """At least ``interval``, and long enough that listing every kind in use takes no more than
        ``share`` of the rate limit (LISTING_SHARE_QUEUED while the rate limit is saturated)."""
        limiter = self.client.limiter
        if limiter.saturated:
            share = self.LISTING_SHARE_QUEUED
        return max(interval, self.pages_in_use(kind) / (share * limiter.rate))

    def _schedule(self, kind: str, started: float) -> None:
        """Set the kind's next listing after one that started at ``started``."""
        failed = self.health[kind].failures > 0
        self._due[kind] = started + self.retry_gap(kind) if failed else self._next_listing(kind, started)

    def _next_listing(self, kind: str, started: float) -> float:
        snapshot: Snapshot[wire.Volume] = getattr(self, kind)
        if kind not in self.used:
            return started + self.slow_interval * self.UNUSED_FACTOR
        busy = not snapshot.ok or kind in self._closely  # else what moves is looked at (see _wants_peek)
        return started + (self.fast_gap(kind) if busy else self.slow_gap(kind))

    def _due_kinds(self, now: float) -> list[str]:
        due = []
        for kind in self.KINDS:
            last = self.health[kind].last_attempt
            failing = self.health[kind].failures > 0  # a nudge does not cut a failing kind's backoff
            nudged = kind in self._wanted and not failing and now >= last + self.fast_gap(kind)
            if now >= self._due[kind] or nudged:
                due.append(kind)
        return due

    def _peeking(self, now: float) -> list[str]:
        """The kinds to look at now (see :meth:`_look_due`)."""
        return [k for k in self.KINDS if self._wants_peek(k) and now >= self._look_due(k)]

    def look_gap(self, kind: str) -> float:
        """The time between two looks at the kind now: the fast interval, a QUICK_LOOKS'th of it
        while something this operator made or changed is on its way and no call waits for the
        rate limit. A look takes the urgent lane: while calls queue, each page read is a call less
        sent (four looks a second at two kinds were a fifth of R at the end of a burst, as the
        last creates and attaches waited), and the calls, not the looks, set the pace."""
        recent = self._clock() - self._last_call[kind] < self.QUICK_LOOKS * self.fast_interval
        on_its_way = self._awaited[kind] or (recent and self._on_its_way[kind])
        quick = bool(on_its_way) and not self.client.limiter.busy
        return self.fast_interval / self.QUICK_LOOKS if quick else self.fast_interval

    def _look_due(self, kind: str) -> float:
        """When the kind is looked at next: a :meth:`look_gap` after its last look or listing, and
        never before the pages of the last looks fit in their share of the rate."""
        return max(self._next_peek, self._peeked[kind] + self.look_gap(kind))

    def _sleep_until(self, now: float) -> float:
        wake = [self._due[k] for k in self.KINDS]
        wake += [self._look_due(k) for k in self.KINDS if self._wants_peek(k)]
        wake += [
            self.health[k].last_attempt + self.fast_gap(k)
            for k in self._wanted
            if not self.health[k].failures
        ]
        return max(0.0, min(wake) - now)

    async def run(self) -> None:
        """Poll until cancelled: each kind on its own schedule (fast while anything of it moves,
        slow when it is steady, sooner when nudged, backing off while it fails). Nothing but
        cancellation ends it: an error anywhere in a round is logged and the round comes again."""
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("Barrack inventory round failed unexpectedly; the poller goes on")
                await asyncio.sleep(self.fast_interval)

    async def _round(self) -> None:
        now = self._clock()
        kinds = self._due_kinds(now)
        if kinds:
            self._wanted.difference_update(kinds)
            changed = await self.poll_once(kinds)
            for kind in kinds:
                self._schedule(kind, now)
            await self._report(changed)
            return
        peeking = self._peeking(now)
        if peeking:
            changed, pages = set(), 0
            for kind in peeking:
                if len(getattr(self, kind).items) < PAGE_LIMIT:  # one page: the look is a listing
                    changed |= await self.poll_once([kind])
                    self._schedule(kind, now)
                    pages += 1
                    continue
                shown, read = await self.peek(kind)
                changed |= shown
                pages += read
            share = self.PEEK_SHARE if self.client.limiter.saturated else self.LISTING_SHARE_MOVING
            self._next_peek = now + pages / (share * self.client.limiter.rate)
            await self._report(changed)
            return
        self._nudge.clear()
        await wait_event(self._nudge, self._sleep_until(now))

    async def _report(self, changed: set[str]) -> None:
        if changed and self._on_change is not None:
            result = self._on_change(changed)
            if asyncio.iscoroutine(result):
                await result
