"""Leader election on a ``coordination.k8s.io`` Lease, with fencing.

Several replicas of the operator may run; only the holder of the Lease reconciles. The holder
renews the Lease every ``retry_period``; a standby takes it over once the record it last saw has
not changed for ``lease_duration`` (measured on the standby's own clock, as client-go does, so
clock skew between nodes does not matter). Updates carry the Lease's resourceVersion, so two
candidates can never both win.

Fencing: before every Barrack mutation the holder checks :meth:`LeaderElector.valid` - that the
Lease is its own and was renewed within ``renew_deadline`` (shorter than ``lease_duration``, so a
holder cut off from the apiserver stops mutating before any standby can take over). When it is not,
the mutation is refused and ``on_lost`` stops the process, so the kubelet restarts it as a standby.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


class LeadershipLost(Exception):
    """A Barrack mutation was refused because this process no longer surely holds the Lease."""


class KubeRequests(Protocol):
    async def request_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]: ...


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    identity: str
    name: str = "barrack-operator"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubeRequests,
        settings: LeaseSettings,
        *,
        on_lost: Callable[[], Awaitable[None] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.renew_deadline >= settings.lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        self.kube = kube
        self.settings = settings
        self._on_lost = on_lost
        self._clock = clock
        self._renewed_at: float | None = None
        self._observed: tuple[str, float] | None = None  # (the record we last saw, when it changed)
        self.stepping_down = False
        self.acquired_at: float | None = None

    @property
    def path(self) -> str:
        s = self.settings
        return f"/apis/coordination.k8s.io/v1/namespaces/{s.namespace}/leases"

    def valid(self) -> bool:
        """This process holds the Lease, renewed it within the renew deadline, and is not stepping
        down."""
        return (
            not self.stepping_down
            and self._renewed_at is not None
            and self._clock() - self._renewed_at < self.settings.renew_deadline
        )

    def step_down(self) -> None:
        """A clean stop begins: no Barrack call from here on (every fence refuses), while the
        Lease is still held until :meth:`release` hands it over."""
        self.stepping_down = True

    def fence(self) -> None:
        """Raise :class:`LeadershipLost` unless :meth:`valid`; called before every mutation."""
        if not self.valid():
            raise LeadershipLost(
                f"{self.settings.identity} no longer surely holds the Lease; no Barrack call"
            )

    async def acquire(self) -> None:
        """Return once this process holds the Lease."""
        log.info(
            "Waiting to lead: Lease %s/%s as %s",
            self.settings.namespace,
            self.settings.name,
            self.settings.identity,
        )
        while True:
            try:
                if await self._try():
                    break
            except Exception as exc:  # the apiserver away at start: try again
                log.warning("Reading the Lease failed: %s", exc)
            await asyncio.sleep(self.settings.retry_period)
        self.acquired_at = self._clock()
        log.info(
            "Leading: Lease %s/%s is held by %s",
            self.settings.namespace,
            self.settings.name,
            self.settings.identity,
        )

    async def keep(self) -> None:
        """Renew the Lease until cancelled; when renewal fails past the deadline, call ``on_lost``."""
        while True:
            await asyncio.sleep(self.settings.retry_period)
            try:
                held = await self._try()
            except Exception as exc:  # the apiserver away: the deadline decides
                log.warning("Renewing the Lease failed: %s", exc)
                held = False
            if not held and not self.valid():
                self._renewed_at = None
                log.error(
                    "Lost the Lease %s/%s: no more Barrack calls; stopping",
                    self.settings.namespace,
                    self.settings.name,
                )
                if self._on_lost is not None:
                    result = self._on_lost()
                    if asyncio.iscoroutine(result):
                        await result
                return

    async def release(self) -> None:
        """Give the Lease up on a clean stop, so a standby takes over at once."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        status, lease = await self.kube.request_json("GET", f"{self.path}/{self.settings.name}")
        if status != 200 or lease.get("spec", {}).get("holderIdentity") != self.settings.identity:
            return
        lease["spec"] = {
            **lease["spec"],
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": _now(),
        }
        await self.kube.request_json("PUT", f"{self.path}/{self.settings.name}", lease)

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; True when this process holds it now."""
        s, now = self.settings, self._clock()
        status, lease = await self.kube.request_json("GET", f"{self.path}/{s.name}")
        if status == 404:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": s.name, "namespace": s.namespace},
                "spec": self._spec(acquire=True, transitions=0),
            }
            created, _ = await self.kube.request_json("POST", self.path, body)
            return self._held(created in (200, 201), now)
        if status != 200:
            raise RuntimeError(f"reading the Lease answered {status}")
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = f"{holder}|{spec.get('renewTime')}|{lease['metadata'].get('resourceVersion')}"
        if self._observed is None or self._observed[0] != record:
            self._observed = (record, now)
        duration = float(spec.get("leaseDurationSeconds") or s.lease_duration)
        if holder and holder != s.identity and now - self._observed[1] < duration:
            self._renewed_at = None  # someone else holds it: no more mutations from here, at once
            return False
        changed_hands = holder != s.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if changed_hands else 0)
        lease["spec"] = {**spec, **self._spec(acquire=changed_hands, transitions=transitions)}
        if not changed_hands:
            lease["spec"]["acquireTime"] = spec.get("acquireTime") or lease["spec"]["acquireTime"]
        updated, _ = await self.kube.request_json("PUT", f"{self.path}/{s.name}", lease)
        return self._held(updated == 200, now)

    def _spec(self, *, acquire: bool, transitions: int) -> dict[str, Any]:
        now = _now()
        spec: dict[str, Any] = {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": max(1, round(self.settings.lease_duration)),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if acquire:
            spec["acquireTime"] = now
        return spec

    def _held(self, held: bool, attempted_at: float) -> bool:
        if held:
            self._renewed_at = attempted_at  # counted from before the call: the safe side
        return held
