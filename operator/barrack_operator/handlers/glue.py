"""The one way a kind is wired into kopf; the per-kind modules call :func:`register`.

Kopf watches; reconciling and finalizing are the runtime's work queue, fed by the watch events
(one queue for all objects instead of a kopf daemon per object). The operator adds and removes its
finalizer itself (:data:`~barrack_operator.engine.objects.FINALIZER`): with the create mark, one
write per object instead of two."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import kopf

from barrack_operator.engine.objects import KOPF_FINALIZER, Reconciler
from barrack_operator.engine.runtime import Runtime
from barrack_operator.engine.schedules import ScheduleRunner
from barrack_operator.handlers import lean_bodies
from barrack_operator.resources.kinds import ACCOUNT, INSTANCE, POWER_SCHEDULE, SCHEDULE, Kind
from barrack_operator.resources.specs import GROUP, VERSION

log = logging.getLogger(__name__)


def register(
    registry: kopf.OperatorRegistry, runtime: Runtime, kind: Kind, reconcile: Reconciler, finalize: Reconciler
) -> None:
    resource = (GROUP, VERSION, kind.plural)
    runtime.serve_kind(kind, reconcile, finalize)

    @kopf.on.event(*resource, registry=registry)
    async def observe(body: kopf.Body, type: str | None, **_: Any) -> None:  # async: no thread hop
        runtime.on_event(kind, dict(body), type)


def register_schedules(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """BarrackSnapshotSchedules are served by the work queue like every kind, with work of their
    own (they own nothing on Barrack); kopf only watches them."""
    runner = ScheduleRunner(runtime.registry, runtime.writer, runtime.timing)
    runtime.serve_work(SCHEDULE, runner.work, runner.forget)

    @kopf.on.event(GROUP, VERSION, SCHEDULE.plural, registry=registry)
    async def observe_schedule(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.on_event(SCHEDULE, dict(body), type)


def register_power_schedules(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """BarrackPowerSchedules are served by the work queue with work of their own; a new
    BarrackInstance makes its namespace's schedules look again (a selector may match it)."""
    runner = runtime.power
    runtime.serve_work(POWER_SCHEDULE, runner.work, runner.forget)

    @kopf.on.event(GROUP, VERSION, POWER_SCHEDULE.plural, registry=registry)
    async def observe_power_schedule(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.on_event(POWER_SCHEDULE, dict(body), type)

    @kopf.on.event(GROUP, VERSION, INSTANCE.plural, registry=registry)
    async def instance_appeared(body: kopf.Body, type: str | None, **_: Any) -> None:
        if type in (None, "ADDED"):
            runner.instance_seen(body.get("metadata", {}).get("namespace", ""))


def register_accounts(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """BarrackAccounts (cluster-scoped) are read, never finalized: every event updates the account
    the runtime uses (its key, URL, rate limit, namespaces, budget)."""

    @kopf.on.event(GROUP, VERSION, ACCOUNT.plural, registry=registry)
    async def account_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        await runtime.on_account_event(dict(body), type)


class RetryBackoffs:
    """Seconds between kopf's attempts at one apiserver request: ``first``, then ``then`` for ever.

    Kopf's default retries eight times (about a minute in all) and then gives the error up; a watch
    that gives up stops kopf as a whole. An apiserver that restarts several times within a minute
    (an upgrade, an etcd failover) spends that budget across its restarts, and the operator stopped
    watching. So kopf's requests wait and retry for as long as the apiserver is away, as
    client-go's reflectors do. The sequence has no length: kopf counts attempts only of a sized one
    (its log then says "attempt #12" without "/9"). Each request iterates it afresh."""

    def __init__(self, first: tuple[float, ...] = (1, 2, 3, 5, 8), then: float = 10.0) -> None:
        self.first = first
        self.then = then

    def __iter__(self) -> Iterator[float]:
        return itertools.chain(self.first, itertools.repeat(self.then))


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf keeps a copy of each object's last handled spec to tell creations from updates, for
    on.create and on.update handlers; the operator has none (reconcile is level-triggered), so
    the copy is neither read nor written: one Kubernetes write less per object."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    """Kopf settings: a finalizer name of kopf's own (see :data:`KOPF_FINALIZER`), progress kept
    in annotations (status belongs to the operator's schema), no diff base (see
    :class:`NoDiffBase`), bodies kept without managedFields (see :mod:`lean_bodies`), log lines
    not mirrored as events (events are posted on purpose), watches that are re-established
    regularly, requests retried for as long as the apiserver is away (see
    :class:`RetryBackoffs`), per-object event workers that end after a second without events
    (fewer alive in a burst), and no watching of CRDs and namespaces: the kinds are known at start
    (the CRDs are installed with the operator) and the namespaces are given by name or are all of
    them, so the operator needs no permission on either (least privilege)."""
    settings.scanning.disabled = True
    lean_bodies.install()
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.CRITICAL
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = RetryBackoffs()
    settings.queueing.error_delays = [1, 2, 5, 10, 20]
    settings.queueing.idle_timeout = 1.0  # kopf's default is 5 s
