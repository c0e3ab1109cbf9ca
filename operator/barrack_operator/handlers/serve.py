"""The operator's life: serve health, take the Lease, then run kopf over the kinds whose CRDs are
installed, for as long as the process lives.

Kopf serves the kinds it finds at its start (its CRD scanning is off: that would need list and
watch on every CRD in the cluster), and a watch whose CRD is deleted fails kopf as a whole. So kopf
runs in a loop here: the kinds served are the kinds the apiserver's discovery lists; when that set
changes (a CRD deleted by an uninstall, or installed again), kopf stops cleanly and starts again
over the new set. A missing CRD never stops the operator: it serves the other kinds and waits for
it. The Barrack inventory, the Lease and every object's memory live outside kopf and carry over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

import kopf

from barrack_operator.engine.runtime import Runtime
from barrack_operator.handlers import glue, kinds
from barrack_operator.kube import StatusWriter
from barrack_operator.resources.kinds import ALL_KINDS
from barrack_operator.resources.specs import GROUP, VERSION
from barrack_operator.settings import Settings
from barrack_operator.waiting import wait_event

log = logging.getLogger(__name__)
DISCOVERY_INTERVAL = 5.0
"""Seconds between two reads of the apiserver's discovery of the barrack.ai group."""
KOPF_STOP_GRACE = 20.0
"""Seconds kopf is given to stop when the served kinds change."""


async def served_kinds(kube: StatusWriter) -> frozenset[str] | None:
    """The plurals of the operator's kinds the apiserver serves now (discovery needs no permission
    beyond being authenticated); None when the apiserver cannot be asked."""
    found = await _discover(kube)
    return None if found is None else found[0]


async def _discover(kube: StatusWriter) -> tuple[frozenset[str], frozenset[str]] | None:
    """(served, terminating): the operator's kinds the apiserver lists, and those of them whose CRD
    is being deleted (listed without the patch verb)."""
    try:
        status, body = await kube.request_json("GET", f"/apis/{GROUP}/{VERSION}")
    except Exception as exc:
        log.warning("Reading the apiserver's discovery of %s/%s failed: %s", GROUP, VERSION, exc)
        return None
    if status == 404:
        return frozenset(), frozenset()
    if status != 200:
        log.warning("Reading the apiserver's discovery of %s/%s answered %s", GROUP, VERSION, status)
        return None
    verbs = {r.get("name"): set(r.get("verbs") or ()) for r in body.get("resources", [])}
    served = frozenset(kind.plural for kind in ALL_KINDS if kind.plural in verbs)
    return served, frozenset(plural for plural in served if "patch" not in verbs[plural])


async def serve(settings: Settings) -> None:
    runtime = Runtime(settings)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    starting = asyncio.create_task(runtime.start(), name="barrack-start")
    stopping = asyncio.create_task(stop.wait(), name="barrack-stop")
    stepping_down = asyncio.create_task(_step_down_on(stop, runtime), name="barrack-step-down")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start is the process's failure
            await _serve_kinds(runtime, settings, stop)
    finally:
        stopping.cancel()
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        if not stop.is_set():  # a failure, not a signal: nothing stepped down
            stepping_down.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stepping_down
        await runtime.stop()


async def _step_down_on(stop: asyncio.Event, runtime: Runtime) -> None:
    """On SIGTERM or SIGINT, at once and beside kopf's own stop: no more calls, the Lease handed
    over (see :meth:`Runtime.step_down`)."""
    await stop.wait()
    await runtime.step_down()


async def _serve_kinds(runtime: Runtime, settings: Settings, stop: asyncio.Event) -> None:
    assert runtime.status_writer is not None
    kube = runtime.status_writer
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)  # the kubernetes client's kubeconfig / in-cluster logic

    kinds.install(registry, runtime)
    operator_settings = kopf.OperatorSettings()
    glue.configure(operator_settings)
    namespaces = settings.namespaces or ([] if settings.all_namespaces else ["default"])
    while not stop.is_set():
        served = await _kinds_installed(kube, stop)
        if served is None:
            return
        missing = sorted(kind.plural for kind in ALL_KINDS if kind.plural not in served)
        if missing:
            log.warning(
                "The CRDs of %s are not installed: serving the other kinds, and these once they return",
                ", ".join(f"{plural}.{GROUP}" for plural in missing),
            )
        changed = asyncio.Event()
        watcher = asyncio.create_task(
            _watch_discovery(runtime, namespaces, served, changed), name="barrack-discovery"
        )
        stopping = asyncio.Event()
        running = asyncio.create_task(
            _run_kopf(
                stopping,
                stop,
                registry=registry,
                settings=operator_settings,
                standalone=True,
                clusterwide=settings.all_namespaces,
                namespaces=[] if settings.all_namespaces else namespaces,
                stop_flag=_either(stop, changed),
            ),
            name="kopf",
        )
        try:
            await _stopped_in_time(running, stopping, changed, stop)
        except Exception as exc:
            if not is_not_found(exc) and await served_kinds(kube) == served:
                raise  # not a CRD that went: the process fails, and is started again
            log.warning("A watch ended as its CRD went (%s); kopf starts again over the kinds served", exc)
            changed.set()
            await wait_event(stop, DISCOVERY_INTERVAL)  # discovery may lag the watch by a moment
        finally:
            watcher.cancel()
            _stop_on_signals(stop)
            await runtime.stop_reconciling()  # kopf's listings feed the queue again if it starts again
        if not changed.is_set():
            return  # stopped on a signal
        log.info("The served kinds changed; kopf starts again over them")


async def _kinds_installed(kube: StatusWriter, stop: asyncio.Event) -> frozenset[str] | None:
    """The kinds whose CRDs are installed, once there is one; None if the operator stops first."""
    while (served := await served_kinds(kube)) is None or not served:
        if served is not None:
            log.warning("No CRD of %s is installed; waiting for them (kubectl apply -f crds/)", GROUP)
        await wait_event(stop, DISCOVERY_INTERVAL)
        if stop.is_set():
            return None
    return served


async def _run_kopf(stopping: asyncio.Event, stop: asyncio.Event, **options: Any) -> None:
    """What ``kopf.operator`` does (spawn kopf's root tasks, then run them), with ``stopping`` set
    as soon as one of the root tasks ends: kopf then stops as a whole, on a stop flag or on a
    failure of its own, and the operator can bound how long that takes. Kopf installs signal
    handlers of its own; the operator's are put back, so that SIGTERM sets ``stop`` (kopf's stop
    flag among others) and the Lease is handed over beside kopf's stop, not after it."""
    existing = asyncio.all_tasks()  # kopf cancels every task made after this when it stops
    roots = await kopf.spawn_tasks(**options)
    _stop_on_signals(stop)
    for root in roots:
        root.add_done_callback(lambda _: stopping.set())
    await kopf.run_tasks(roots, ignored=existing)


async def _stopped_in_time(
    running: asyncio.Task[None], stopping: asyncio.Event, changed: asyncio.Event, stop: asyncio.Event
) -> None:
    """Await kopf. Once the served kinds changed, or kopf began to stop on a failure of its own,
    give it KOPF_STOP_GRACE seconds to stop. Kopf can hang stopping a watch whose CRD went
    mid-request, or a watch that was re-authenticating when its failure stopped kopf (its stop
    then waits for that task for ever, while the process keeps its Lease and answers its liveness
    probe: a leader that reconciles nothing). Then the process starts itself again in place (the
    same pid, its log and its pod's Lease identity), which is what a restart would do. A stop on a
    signal is awaited as before: the kubelet ends the pod after its grace period."""
    events = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait({running, *events}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for event in events:
            event.cancel()
    if not running.done() and not stop.is_set():
        done, _ = await asyncio.wait({running}, timeout=KOPF_STOP_GRACE)
        if not done and not stop.is_set():
            why = "after the served kinds changed" if changed.is_set() else "after a failure of its own"
            log.warning(
                "Kopf did not stop within %.0f s %s; the operator starts itself again in place",
                KOPF_STOP_GRACE,
                why,
            )
            restart_in_place()
    await running


def restart_in_place() -> None:
    """Replace this process by a fresh run of the same command line (same pid)."""
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


async def _watch_discovery(
    runtime: Runtime, namespaces: list[str], served: frozenset[str], changed: asyncio.Event
) -> None:
    """Every DISCOVERY_INTERVAL: a change of the served kinds restarts kopf; the objects of a CRD
    being deleted are released (kopf serves no kind it cannot patch, so once it restarted, an
    uninstall's remaining objects would keep their finalizers and the CRD for ever)."""
    assert runtime.status_writer is not None
    while True:
        await asyncio.sleep(DISCOVERY_INTERVAL)
        found = await _discover(runtime.status_writer)
        if found is None:
            continue
        now, terminating = found
        for plural in sorted(terminating):
            try:
                await runtime.uninstall.release_all(plural, namespaces)
            except Exception as exc:  # the next look tries again
                log.warning("Releasing the objects of %s.%s failed: %s", plural, GROUP, exc)
        if now != served:
            changed.set()
            return


def _either(*events: asyncio.Event) -> asyncio.Future[None]:
    """A future done as soon as any of the events is set (kopf's stop flag)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    async def wait_one() -> None:
        waits = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not done.done():
            done.set_result(None)

    task = loop.create_task(wait_one())
    done.add_done_callback(lambda _: task.cancel())
    return done


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


def is_not_found(exc: BaseException) -> bool:
    """The apiserver answered 404 (kopf's API errors carry ``status``), here or in its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "status", None) == 404:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
