"""What the inventory holds and reads: one kind's listing (by id, where each resource stood,
what a look showed), a kind's listing health, the listing each object kind lives in and reads,
the kinds a route's call changes, and the pages a look reads (:func:`cover`)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from barrack_operator.barrack import BarrackError
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.client import PAGE_LIMIT
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.routes import ROUTES

T = TypeVar(  # each Barrack resource type a listing holds; the one place that names them all
    "T",
    wire.Volume,
    wire.VMInstance,
    wire.Firewall,
    wire.SSHKey,
    wire.Script,
    wire.Snapshot,
    wire.CustomImage,
)
Item = (
    wire.Volume
    | wire.VMInstance
    | wire.Firewall
    | wire.SSHKey
    | wire.Script
    | wire.Snapshot
    | wire.CustomImage
)
_TRANSITIONAL: dict[str, Callable[[str], bool]] = {
    "volumes": lambda s: wire.is_transitional(wire.VolumeState, s),
    "instances": lambda s: wire.is_transitional(wire.InstanceState, s),
    "firewalls": lambda s: wire.is_transitional(wire.FirewallState, s),
    "ssh_keys": lambda s: False,
    "scripts": lambda s: False,
    "snapshots": lambda s: wire.is_transitional(wire.SnapshotState, s),
    "images": lambda s: wire.is_transitional(wire.ImageState, s),
}


@dataclass
class Snapshot(Generic[T]):
    """One kind's listing: by id and by name, and when the poll that produced it started."""

    items: dict[str, T] = field(default_factory=dict)
    started_at: float = 0.0
    ok: bool = False
    recorded: dict[str, float] = field(default_factory=dict)
    """Ids a mutation's reply put in ``items`` since this listing, and when."""
    position: dict[str, int] = field(default_factory=dict)
    """Where each resource stood in Barrack's listing (0 is the first) when a read last showed it."""
    end: int = 0
    """One past the last position known: where resources made since are expected."""
    seen: dict[str, float] = field(default_factory=dict)
    """Resources a look at some pages showed since this listing, and when their page was asked for."""

    def by_name(self, name: str) -> list[T]:
        return [item for item in self.items.values() if item.name == name]

    def transitional(self, kind: str) -> bool:
        return any(moves(kind, item) for item in self.items.values())

    def moving(self, kind: str) -> set[str]:
        """The resources in a transitional state, or with an attachment in one."""
        return {item_id for item_id, item in self.items.items() if moves(kind, item)}

    def shown_since(self, item_id: str, since: float) -> bool:
        """A read that Barrack answered after ``since`` showed this resource: the whole listing, or
        the page it was on."""
        return (self.ok and self.started_at > since) or self.seen.get(item_id, -math.inf) > since


def moves(kind: str, item: Item) -> bool:
    is_moving = _TRANSITIONAL[kind]
    if is_moving(item.status):
        return True
    return any(is_moving(a.status) for a in getattr(item, "attachments", ()))


class ListingFailed(Exception):
    """A kind's listing failed for a reason that is neither a Barrack error nor a missing key (a
    bug, say); it stands for that error where a caller needs one."""


ListingError = BarrackError | MissingApiKey | ListingFailed


class InventoryClosed(Exception):
    """The account's inventory was closed while a pass waited on it (its BarrackAccount changed
    or went): the pass starts again on the account in use."""


@dataclass
class ListingHealth:
    """How a kind's listings have gone: the last error (None once one succeeds), how many failed in
    a row, and when the last successful one finished."""

    error: ListingError | None = None
    failures: int = 0
    last_success: float | None = None
    last_attempt: float = 0.0


def error_reason(error: BaseException) -> str:
    """The ``reason`` label of ``barrack_inventory_errors_total``: the error's class name."""
    return type(error).__name__ if isinstance(error, BarrackError | MissingApiKey) else "OperatorError"


def cover(positions: set[int], first: int | None = None) -> list[tuple[int, int]]:
    """Few reads, as (page, limit) with limit at most PAGE_LIMIT, that together cover every one of
    ``positions`` (a page N of limit L holds positions (N - 1) x L to N x L - 1): from the lowest
    position left, the page that covers it and most of the others, of the larger limit on a tie.
    The one that covers ``first`` reaches as far beyond it as it can (what follows it is new)."""
    left = sorted(positions)
    reads = []
    while left:
        low = left[0]
        best: tuple[tuple[int, int, int], int, int] | None = None
        for limit in range(PAGE_LIMIT, 0, -1):
            page = low // limit + 1
            start, stop = (page - 1) * limit, page * limit
            covered = bisect.bisect_left(left, stop)  # a prefix of ``left``: start <= low
            reach = stop if first is not None and start <= first < stop else 0
            score = (covered, reach, limit)
            if best is None or score > best[0]:
                best = (score, page, limit)
        assert best is not None
        _, page, limit = best
        reads.append((page, limit))
        left = left[bisect.bisect_left(left, page * limit) :]
    return reads


def kinds_touched(route_name: str) -> set[str]:
    """The inventory kinds a mutation may change: its own, and volumes for instance operations
    (attach, detach, delete) and instances for firewall ones (attach)."""
    return set(_AFFECTS.get(_segment(route_name), ()))


def kind_addressed(route_name: str) -> str:
    """The inventory kind of the resource a route's path names (an attach of volumes names the
    instance they go on)."""
    return _AFFECTS[_segment(route_name)][0]


def _segment(route_name: str) -> str:
    return ROUTES[route_name].path.strip("/").split("/")[0]


_AFFECTS = {
    "volumes": ("volumes",),
    "instances": ("instances", "volumes"),
    "firewalls": ("firewalls", "instances"),
    "ssh-keys": ("ssh_keys",),
    "scripts": ("scripts",),
    "snapshots": ("snapshots", "images", "instances"),  # an image is made, a restore makes an instance
    "images": ("images",),
}
LISTING_OF: dict[str, str] = {
    "BarrackVolume": "volumes",
    "BarrackInstance": "instances",
    "BarrackFirewall": "firewalls",
    "BarrackSSHKey": "ssh_keys",
    "BarrackStartupScript": "scripts",
    "BarrackSnapshot": "snapshots",
    "BarrackImage": "images",
}
"""The inventory listing that holds each object kind's Barrack resources."""
PLAN_READS: dict[str, tuple[str, ...]] = {
    "BarrackVolume": ("volumes", "instances"),
    "BarrackInstance": ("instances",),
    "BarrackFirewall": ("firewalls", "instances"),
    "BarrackSSHKey": ("ssh_keys",),
    "BarrackStartupScript": ("scripts", "instances"),
    "BarrackSnapshot": ("snapshots", "instances"),
    "BarrackImage": ("images", "snapshots"),
}
"""The listings each object kind's plan reads: its own, and those of what it attaches to or is
made from (what a reconcile-now reads afresh)."""
KIND_OF: dict[type, str] = {
    wire.Volume: "volumes",
    wire.VMInstance: "instances",
    wire.Firewall: "firewalls",
    wire.SSHKey: "ssh_keys",
    wire.Script: "scripts",
    wire.Snapshot: "snapshots",
    wire.CustomImage: "images",
}
