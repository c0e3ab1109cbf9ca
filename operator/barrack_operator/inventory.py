"""The shared cloud inventory: one paginated LIST per kind per poll, read by every reconcile.

Steady objects cost no Barrack call of their own: they read this index. The poller runs fast
while anything is transitional (or a reconcile asked for a look soon) and slow when all is steady.
After each poll it reports the ids whose resource changed (or vanished), so the objects that care
are woken at once rather than at their next timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from barrack_operator.barrack import BarrackClient, BarrackError
from barrack_operator.barrack import models as wire

log = logging.getLogger(__name__)
T = TypeVar("T", wire.Volume, wire.VMInstance, wire.Firewall, wire.SSHKey)
OnChange = Callable[[set[str]], Awaitable[None] | None]

_TRANSITIONAL: dict[str, Callable[[str], bool]] = {
    "volumes": lambda s: wire.is_transitional(wire.VolumeState, s),
    "instances": lambda s: wire.is_transitional(wire.InstanceState, s),
    "firewalls": lambda s: wire.is_transitional(wire.FirewallState, s),
    "ssh_keys": lambda s: False,
}


@dataclass
class Snapshot(Generic[T]):
    """One kind's listing: by id and by name, and when the poll that produced it started."""

    items: dict[str, T] = field(default_factory=dict)
    started_at: float = 0.0
    ok: bool = False

    def by_name(self, name: str) -> list[T]:
        return [item for item in self.items.values() if item.name == name]

    def transitional(self, kind: str) -> bool:
        is_moving = _TRANSITIONAL[kind]
        for item in self.items.values():
            if is_moving(item.status):
                return True
            attachments = getattr(item, "attachments", [])
            if any(is_moving(a.status) for a in attachments):
                return True
        return False


class Inventory:
    KINDS = ("volumes", "instances", "firewalls", "ssh_keys")

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
        self.last_error: BarrackError | None = None
        self.last_poll_finished: float | None = None
        self._polled = asyncio.Condition()
        self._nudge = asyncio.Event()
        self.polled_once = asyncio.Event()

    # Reads ---------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return all(getattr(self, k).ok for k in self.KINDS)

    def age(self) -> float | None:
        return None if self.last_poll_finished is None else self._clock() - self.last_poll_finished

    def nudge(self) -> None:
        """Ask for the next poll soon (after a mutation, or when an object waits on a transition)."""
        self._nudge.set()

    def record(self, item: wire.Volume | wire.VMInstance | wire.Firewall | wire.SSHKey) -> None:
        """Fold a resource a mutation returned into the index, so the next read sees it."""
        if isinstance(item, wire.Volume):
            self.volumes.items[item.id] = item
        elif isinstance(item, wire.VMInstance):
            self.instances.items[item.id] = item
        elif isinstance(item, wire.Firewall):
            self.firewalls.items[item.id] = item
        else:
            self.ssh_keys.items[item.id] = item
        self.nudge()

    async def wait_fresh(self, since: float, timeout: float = 120.0) -> None:
        """Wait until every kind has been listed by a poll that started after ``since``; a create
        after an ambiguous failure must see Barrack as it is now before it repeats itself."""
        self.nudge()
        async with self._polled:
            await asyncio.wait_for(
                self._polled.wait_for(
                    lambda: all(
                        getattr(self, k).ok and getattr(self, k).started_at > since for k in self.KINDS
                    )
                ),
                timeout,
            )

    # Polling -------------------------------------------------------------------------------------

    async def poll_once(self) -> set[str]:
        """List every kind; returns the ids that changed or vanished since the previous poll."""
        changed: set[str] = set()
        sources: dict[
            str, Callable[[], AsyncIterator[wire.Volume | wire.VMInstance | wire.Firewall | wire.SSHKey]]
        ] = {
            "volumes": self.client.iter_volumes,
            "instances": self.client.iter_instances,
            "firewalls": self.client.iter_firewalls,
            "ssh_keys": self.client.iter_ssh_keys,
        }
        for kind, source in sources.items():
            started = self._clock()
            try:
                items = {item.id: item async for item in source()}
            except BarrackError as error:
                self.last_error = error
                log.warning("Barrack inventory poll of %s failed: %s", kind, error)
                continue
            previous: Snapshot[wire.Volume] = getattr(self, kind)
            for item_id in previous.items.keys() | items.keys():
                if previous.items.get(item_id) != items.get(item_id):
                    changed.add(item_id)
            setattr(self, kind, Snapshot(items=items, started_at=started, ok=True))
            self.last_error = None
        self.last_poll_finished = self._clock()
        self.polled_once.set()
        async with self._polled:
            self._polled.notify_all()
        return changed

    def _busy(self) -> bool:
        return any(getattr(self, k).transitional(k) for k in self.KINDS)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            self._nudge.clear()
            changed = await self.poll_once()
            if changed and self._on_change is not None:
                result = self._on_change(changed)
                if asyncio.iscoroutine(result):
                    await result
            interval = self.fast_interval if (self._busy() or self.last_error) else self.slow_interval
            try:
                await asyncio.wait_for(self._nudge.wait(), interval)
                await asyncio.sleep(min(self.fast_interval, 0.5))  # gather a burst of nudges into one poll
            except TimeoutError:
                pass
