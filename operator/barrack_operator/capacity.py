"""Placement: where a new instance lands, from Barrack's GPU stock (contract section 8), its prices
and the instance's alternatives, and who gets scarce stock first.

:func:`judge` and :func:`allocate` are pure. :class:`CapacityBoard` keeps, per account, the
instances waiting for a place and the stock as last read: one ``GET /gpu-stocks/`` per fast poll
serves every waiting instance (none while nothing waits), and a change in stock wakes the
instances it can now serve. When stock appears for fewer instances than wait, the oldest waiting
ones (by creation time) get it first. An alternative Barrack refused as out of stock is not tried
again until the stock changes: never more than one create per alternative per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from barrack_operator.barrack import BarrackClient, BarrackError
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.costs import PriceBook

log = logging.getLogger(__name__)
Key = tuple[str, str]
"""(region, GPU model)."""


@dataclass(frozen=True)
class Place:
    """One alternative: a region and a GPU model and count."""

    region: str
    gpu_model: str
    gpu_count: int

    @property
    def key(self) -> Key:
        return (self.region, self.gpu_model)

    def label(self) -> str:
        return f"{self.gpu_model} x{self.gpu_count} in {self.region}"


@dataclass(frozen=True)
class Want:
    """An instance waiting for a place: its alternatives in order, its price cap, the region its
    volumes pin it to (and why), and the regions whose OS images lack the one it boots from."""

    uid: str
    created: str
    """metadata.creationTimestamp: the oldest waiting instance is served first."""
    places: tuple[Place, ...]
    max_price: float | None = None
    pinned: tuple[str, str] | None = None
    """(region, why): alternatives elsewhere are skipped."""
    no_image: frozenset[str] = frozenset()
    image: str = ""
    """How the instance names its OS image (for the message about regions without it)."""


@dataclass(frozen=True)
class Placement:
    """Where the instance may land now (``index`` into its alternatives; None: nowhere), and what
    each alternative lacked."""

    index: int | None
    lacks: tuple[str, ...] = ()
    refused: bool = False
    """Some alternative lacks only because Barrack refused a create there as out of stock though
    its listing shows the GPUs (this instance's, or another's moments ago)."""

    def message(self, interval: float) -> str:
        return (
            "no alternative can be created now: "
            + "; ".join(self.lacks)
            + f". The operator reads Barrack's stock every {interval:g} s while instances wait and creates "
            "this one as soon as an alternative fits; to widen the choice, add alternatives to "
            "spec.placement or raise spec.maxHourlyPrice"
        )


def judge(
    want: Want,
    stock: Mapping[Key, int],
    hourly: Callable[[Place], float | None],
    refused: Iterable[int] = (),
    short: Mapping[Key, int] | None = None,
) -> Placement:
    """The first alternative that fits: in the pinned region, with the OS image, not refused since
    the last change in stock, with the GPUs in stock and priced within the cap. ``short``: what
    Barrack lists of the (region, model) pairs a create was refused at since their stock last
    changed (``stock`` holds less)."""
    refused, short = set(refused), short or {}
    lacks: list[str] = []
    by_refusal = False
    for index, place in enumerate(want.places):
        why, refusal = _lack(
            want, place, index in refused, stock.get(place.key, 0), short.get(place.key), hourly(place)
        )
        if why is None:
            return Placement(index, tuple(lacks), False)
        lacks.append(f"{place.label()}: {why}")
        by_refusal = by_refusal or refusal
    return Placement(None, tuple(lacks), by_refusal)


def _lack(
    want: Want, place: Place, refused: bool, have: int, listed: int | None, price: float | None
) -> tuple[str | None, bool]:
    """What the alternative lacks (None: nothing), and whether only a refusal of Barrack's is
    why. ``listed``: what Barrack lists there when a create was refused since (``have`` is less)."""
    if want.pinned is not None and place.region != want.pinned[0]:
        return f"skipped, {want.pinned[1]}", False
    if place.region in want.no_image:
        return f"Barrack has no OS image {want.image} there", False
    if refused:
        return "Barrack refused it as out of stock; tried again once its stock changes", True
    if have < place.gpu_count:
        if listed is not None:
            return (
                f"Barrack refused a create there as out of stock moments ago though it lists {listed}; "
                "tried again once its stock changes"
            ), True
        return f"stock {have} of {place.gpu_count}", False
    if want.max_price is not None:
        if price is None:
            return "its price is not known yet", False
        if price > want.max_price:
            return f"price {price:g}/h above the cap {want.max_price:g}/h", False
    return None, False


def allocate(
    wants: Iterable[Want],
    stock: Mapping[Key, int],
    hourly: Callable[[Place], float | None],
    refused: Mapping[str, set[int]] | None = None,
    short: Mapping[Key, int] | None = None,
) -> dict[str, Placement]:
    """Each waiting instance's placement, the oldest first: each takes its first fitting
    alternative from what the older ones left."""
    left = dict(stock)
    placed: dict[str, Placement] = {}
    for want in sorted(wants, key=lambda w: (w.created, w.uid)):
        placement = judge(want, left, hourly, (refused or {}).get(want.uid, ()), short)
        placed[want.uid] = placement
        if placement.index is not None:
            place = want.places[placement.index]
            left[place.key] = left.get(place.key, 0) - place.gpu_count
    return placed


@dataclass
class CapacityBoard:
    """One account's waiting instances and the stock as last read (see the module's docstring)."""

    client: BarrackClient
    prices: PriceBook
    interval: float = 2.0
    wake: Callable[[str], None] = lambda uid: None
    clock: Callable[[], float] = time.monotonic
    image_ttl: float = 300.0
    wants: dict[str, Want] = field(default_factory=dict)
    stock: dict[Key, int] | None = None
    """The stock as last read, less what Barrack refused since (see :meth:`refused`)."""
    listed: dict[Key, int] | None = None
    """The stock exactly as the last read listed it."""
    read_at: float | None = None
    reads: int = 0
    """Stock reads so far (one per poll while instances wait)."""
    _refused: dict[str, set[int]] = field(default_factory=dict)
    _placed: dict[str, Placement] = field(default_factory=dict)
    _images: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _task: asyncio.Task[None] | None = None

    def hourly(self, place: Place) -> float | None:
        """The alternative's price per hour while running, at the prices known."""
        return self.prices.full_instance_hourly(place.gpu_model, place.gpu_count)

    async def place(self, want: Want) -> Placement:
        """Where the instance may land now; it waits among the others until :meth:`forget`."""
        self.wants[want.uid] = want
        self._ensure_watching()
        if self.stock is None:
            await self._read()
        with contextlib.suppress(BarrackError, MissingApiKey):
            await self.prices.ensure(gpu_models=[p.gpu_model for p in want.places])
        self._allocate()
        return self._placed[want.uid]

    def refused(self, uid: str, index: int) -> None:
        """Barrack refused the alternative as out of stock: not tried again until stock changes,
        and its stock is taken as too little meanwhile."""
        self._refused.setdefault(uid, set()).add(index)
        want = self.wants.get(uid)
        if want is not None and self.stock is not None:
            place = want.places[index]
            self.stock[place.key] = min(self.stock.get(place.key, 0), place.gpu_count - 1)
        self._allocate()

    def taken(self, uid: str, index: int) -> None:
        """Barrack made the instance at the alternative: its GPUs leave the stock as known until
        the next read (which lists them gone), and it waits no more."""
        want = self.wants.get(uid)
        if want is not None and self.stock is not None:
            place = want.places[index]
            self.stock[place.key] = self.stock.get(place.key, 0) - place.gpu_count
            if self.listed is not None:  # the next read lists the same: no change for that
                self.listed[place.key] = self.listed.get(place.key, 0) - place.gpu_count
        self.forget(uid)
        self._allocate()

    def forget(self, uid: str) -> None:
        """The instance landed, or went: it waits no more."""
        if self.wants.pop(uid, None) is not None:
            self._refused.pop(uid, None)
            self._placed.pop(uid, None)

    async def image_ids(self, region: str) -> dict[str, str]:
        """The region's OS images, name → id (read at most every ``image_ttl`` seconds)."""
        known = self._images.get(region)
        if known is None or self.clock() - known[0] > self.image_ttl:
            images = await self.client.list_os_images(region)
            known = (self.clock(), {i.name: i.id for i in images} | {i.id: i.id for i in images})
            self._images[region] = known
        return known[1]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _ensure_watching(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="barrack-stock")

    async def _watch(self) -> None:
        """Read the stock every interval while instances wait; wake those a change can serve."""
        while self.wants:
            await asyncio.sleep(self.interval)
            if not self.wants:
                break
            served = {u for u, p in self._placed.items() if p.index is not None}
            try:
                changed = await self._read()
            except Exception:  # a failed read is the next one's to mend; the loop goes on
                log.exception("Reading Barrack's GPU stock failed")
                continue
            if not changed:
                continue
            for uid, indices in list(self._refused.items()):  # its stock moved: may be tried again
                want = self.wants.get(uid)
                indices -= {i for i in indices if want is None or want.places[i].key in changed}
            self._allocate()
            for uid, placement in self._placed.items():
                if placement.index is not None and uid not in served:
                    self.wake(uid)

    async def _read(self) -> set[Key]:
        """Read the stock; the (region, model) pairs whose listed stock changed since the last read."""
        async with self._reading:
            listed = await self.client.list_gpu_stocks()
            self.reads += 1
            now = {(str(s["region"]), str(s["gpu_model"])): int(s["available"]) for s in listed}
            before = self.listed or {}
            changed = {k for k in before.keys() | now.keys() if before.get(k) != now.get(k)}
            self.listed, self.read_at = now, self.clock()
            if changed or self.stock is None:
                self.stock = dict(now)
            return changed

    def _allocate(self) -> None:
        listed = self.listed or {}
        short = {k: listed.get(k, 0) for k, n in (self.stock or {}).items() if n < listed.get(k, 0)}
        self._placed = allocate(self.wants.values(), self.stock or {}, self.hourly, self._refused, short)
