"""Kubernetes writes a new resource costs: its progress within createQuiet is not written (only
its outcome is), a wait on an object that is on its way posts no Warning, and a pass after a call
decides on a listing begun after the call's reply (issue 18)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path

from barrack_operator.barrack import BarrackClient
from barrack_operator.barrack.client import MUTATIONS
from barrack_operator.conditions import ATTACHED, READY, SYNCED, Reason
from barrack_operator.engine.objects import FINALIZER
from barrack_operator.engine.references import Registry
from barrack_operator.engine.runtime import Runtime
from barrack_operator.inventory import Inventory
from barrack_operator.resources import instance, volume
from barrack_operator.resources.kinds import VOLUME
from barrack_operator.resources.model import Context, ObjectView, Outcome, RefInfo, Timing
from barrack_operator.settings import Settings
from barrack_sim.app import Simulator
from tests.unit.conftest import make_client
from tests.unit.test_never_leak_never_freeze import active_instance, conditions


def volume_obj(status: dict[str, object] | None = None, **spec: object) -> ObjectView:
    return ObjectView(
        "BarrackVolume", "ns", "data", "uid-1", 1, {"region": "US-1", "sizeGB": 100, **spec}, status or {}
    )


def warnings(out: Outcome) -> list[str]:
    return [e.reason for e in out.events if e.type == "Warning"]


async def test_a_wait_on_an_object_on_its_way_warns_nothing_and_on_a_missing_one_warns(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        refs = Registry()
        refs.objects[("BarrackInstance", "ns", "web")] = RefInfo("uid-web", None, False, None)  # no id yet
        ctx = Context(client=client, inventory=Inventory(client), refs=refs)
        await ctx.inventory.poll_once()

        on_its_way = await volume.reconcile(ctx, volume_obj(instanceRef={"name": "web"}))
        assert conditions(on_its_way)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert warnings(on_its_way) == []

        missing = await volume.reconcile(ctx, volume_obj(instanceRef={"name": "ghost"}))
        assert conditions(missing)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert warnings(missing) == [Reason.REFERENCE_NOT_READY]
        assert sim.calls[("create_volume", 200)] == 0


async def test_progress_within_create_quiet_is_not_written_and_the_outcome_is(sim: Simulator) -> None:
    now = [1000.0]
    async with make_client(sim) as client:
        instance = await active_instance(client, sim, "web")
        refs = Registry()
        refs.objects[("BarrackInstance", "ns", "web")] = RefInfo("uid-web", instance.id, True, "ACTIVE")
        ctx = Context(
            client=client,
            inventory=Inventory(client, clock=lambda: now[0]),
            refs=refs,
            timing=Timing(create_quiet=10.0),
            clock=lambda: now[0],
        )
        await ctx.inventory.poll_once()
        obj = volume_obj(instanceRef={"name": "web"})

        created = await volume.reconcile(ctx, obj)  # CREATING
        assert sim.calls[("create_volume", 200)] == 1
        assert created.defer_status and conditions(created)[READY][0] is False

        sim.account.clock.advance(10)
        await ctx.inventory.poll_once()
        now[0] += 3
        attaching = await volume.reconcile(ctx, obj)  # AVAILABLE: the attach is sent
        assert sim.calls[("attach_volumes", 200)] == 1
        assert attaching.defer_status

        sim.account.clock.advance(10)
        await ctx.inventory.poll_once()
        now[0] += 3
        ready = await volume.reconcile(ctx, obj)
        assert conditions(ready)[READY] == (True, Reason.AVAILABLE)
        assert not ready.defer_status  # the outcome is written

        slow = ObjectView("BarrackVolume", "ns", "slow", "uid-2", 1, {"region": "US-1", "sizeGB": 100}, {})
        assert (await volume.reconcile(ctx, slow)).defer_status  # CREATING, just sent
        now[0] += 11  # past the window, but no listing has shown it since: the reply is no news
        assert (await volume.reconcile(ctx, slow)).defer_status
        await ctx.inventory.poll_once()  # listed, still CREATING: from now on every state is written
        waiting = await volume.reconcile(ctx, slow)
        assert conditions(waiting)[READY][0] is False and not waiting.defer_status

        unlisted = ObjectView(
            "BarrackVolume", "ns", "unlisted", "uid-3", 1, {"region": "US-1", "sizeGB": 100}, {}
        )
        assert (await volume.reconcile(ctx, unlisted)).defer_status
        now[0] += 61  # never listed for a minute (six createQuiets): its state is written anyway
        assert not (await volume.reconcile(ctx, unlisted)).defer_status


async def test_a_volume_is_made_while_its_instance_is_on_its_way_and_attached_once_it_is_there(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        refs = Registry()
        ctx = Context(client=client, inventory=Inventory(client), refs=refs)
        await ctx.inventory.poll_once()
        on_its_way = RefInfo("uid-web", None, False, None, region="US-1")
        refs.objects[("BarrackInstance", "ns", "web")] = on_its_way  # no id yet
        obj = volume_obj(instanceRef={"name": "web"})

        made = await volume.reconcile(ctx, obj)
        assert sim.calls[("create_volume", 200)] == 1  # not held back until the instance has an id
        volume_id = made.status["id"]
        sim.account.clock.advance(10)
        await ctx.inventory.poll_once()  # AVAILABLE: it waits for the instance's id to attach
        made_obj = volume_obj({"id": volume_id}, instanceRef={"name": "web"})
        waiting = await volume.reconcile(ctx, made_obj)
        assert conditions(waiting)[READY][0] is False
        assert conditions(waiting)[ATTACHED] == (False, Reason.REFERENCE_NOT_READY)
        assert "web has no Barrack id yet" in next(
            c.message for c in waiting.conditions if c.type == ATTACHED
        )
        assert warnings(made) == warnings(waiting) == []

        instance = await active_instance(client, sim, "web")  # the instance is made, and ACTIVE
        refs.objects[("BarrackInstance", "ns", "web")] = RefInfo(
            "uid-web", instance.id, True, "ACTIVE", region="US-1"
        )
        await ctx.inventory.poll_once()
        await volume.reconcile(ctx, made_obj)
        assert sim.calls[("attach_volumes", 200)] == 1
        assert sim.calls[("create_volume", 200)] == 1


async def test_a_volume_whose_instance_is_in_another_region_or_account_is_not_made(sim: Simulator) -> None:
    async with make_client(sim) as client:
        refs = Registry()
        ctx = Context(client=client, inventory=Inventory(client), refs=refs)
        await ctx.inventory.poll_once()
        refs.objects[("BarrackInstance", "ns", "far")] = RefInfo("u1", None, False, None, region="CANADA-1")
        refs.objects[("BarrackInstance", "ns", "other")] = RefInfo(
            "u2", None, False, None, account="team-b", region="US-1"
        )
        for name in ("far", "other"):
            out = await volume.reconcile(ctx, volume_obj(instanceRef={"name": name}))
            assert conditions(out)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert sim.calls[("create_volume", 200)] == 0  # a volume that could never attach is not billed


async def test_an_instance_waiting_for_its_ssh_key_writes_no_create_mark(sim: Simulator) -> None:
    async with make_client(sim) as client:
        marks: list[str] = []

        async def mark(obj: ObjectView, spec_defaults: dict[str, object]) -> None:
            marks.append(obj.name)

        refs = Registry()
        refs.objects[("BarrackSSHKey", "ns", "k")] = RefInfo("uid-k", None, False, None)  # on its way
        ctx = Context(client=client, inventory=Inventory(client), refs=refs, mark_create=mark)
        await ctx.inventory.poll_once()
        image = (await client.list_os_images("US-1"))[0]
        spec = {"region": "US-1", "gpuModel": "A40", "imageId": image.id, "sshKeyRefs": [{"name": "k"}]}
        obj = ObjectView("BarrackInstance", "ns", "web", "uid-web", 1, spec, {})
        for _ in range(3):  # every look while the key has no id: a wait, and no write of the object
            out = await instance.reconcile(ctx, obj)
            assert conditions(out)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert marks == [] and sim.calls[("create_instance", 200)] == 0


async def test_a_new_instance_waiting_for_a_key_on_its_way_writes_no_status_until_the_quiet_ends(
    sim: Simulator,
) -> None:
    now = [1000.0]
    async with make_client(sim) as client:
        refs = Registry()
        refs.objects[("BarrackSSHKey", "ns", "k")] = RefInfo("uid-k", None, False, None)  # on its way
        ctx = Context(
            client=client, inventory=Inventory(client), refs=refs, timing=Timing(create_quiet=10.0),
            clock=lambda: now[0],
        )  # fmt: skip
        await ctx.inventory.poll_once()
        image = (await client.list_os_images("US-1"))[0]
        spec = {"region": "US-1", "gpuModel": "A40", "imageId": image.id, "sshKeyRefs": [{"name": "k"}]}
        web = ObjectView("BarrackInstance", "ns", "web", "uid-web", 1, spec, {})
        first = await instance.reconcile(ctx, web)
        assert conditions(first)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert first.defer_status and first.requeue_after is not None and first.requeue_after <= 10.5
        now[0] += 10.5  # the quiet is over: the wait is written
        assert not (await instance.reconcile(ctx, web)).defer_status
        # A key that does not exist at all is a problem to show at once, new object or not.
        spec_missing = {**spec, "sshKeyRefs": [{"name": "ghost"}]}
        other = ObjectView("BarrackInstance", "ns", "other", "uid-other", 1, spec_missing, {})
        missing = await instance.reconcile(ctx, other)
        assert not missing.defer_status and warnings(missing) == [Reason.REFERENCE_NOT_READY]


async def waits_after_an_attach(
    tmp_path: Path, status: dict[str, str]
) -> tuple[list[float], list[tuple[float, set[str], set[str]]]]:
    """Two passes of a volume object (``status`` its recorded status) whose first pass attaches it
    to instance BRK-7D: the replies' times, and what the second pass waited to see before its plan
    (since, kinds, ids)."""
    runtime = Runtime(Settings(api_key_file=tmp_path / "key"))
    inventory = runtime.default.inventory
    waits: list[tuple[float, set[str], set[str]]] = []

    async def listed_once(kind: str) -> None:
        return None

    async def wait_fresh(
        since: float, timeout: float = 0.0, kinds: Iterable[str] | None = None, ids: Iterable[str] = ()
    ) -> None:
        waits.append((since, set(kinds or ()), set(ids)))

    inventory.listed_once = listed_once  # type: ignore[method-assign]
    inventory.wait_fresh = wait_fresh  # type: ignore[method-assign]
    replies: list[float] = []

    async def attach(ctx: Context, obj: ObjectView) -> Outcome:
        sent = MUTATIONS.get()
        assert sent is not None
        sent.append(("attach_volumes", "BRK-7D"))  # as the client does once the limiter lets the call go
        await asyncio.sleep(0.2)  # Barrack's reply
        replies.append(time.monotonic())
        return Outcome()

    metadata = {"uid": "uid-1", "name": "data", "namespace": "ns", "generation": 1, "finalizers": [FINALIZER]}
    body = {"metadata": metadata, "spec": {}, "status": status}
    await runtime.reconcile_once(VOLUME, attach, body)
    assert waits == []
    await runtime.reconcile_once(VOLUME, attach, body)
    await runtime.default.client.aclose()
    return replies, waits


async def test_after_a_call_the_next_pass_waits_for_a_listing_begun_after_its_reply(tmp_path: Path) -> None:
    # An attach waits for the rate limiter behind listings; a page read meanwhile shows the volume
    # unattached. The next pass must decide on a read asked for after the reply, or it attaches
    # twice. A volume whose id is unknown waits for what its call named.
    replies, waits = await waits_after_an_attach(tmp_path, {})
    since, kinds, ids = waits[0]
    assert since >= replies[0] and {"volumes", "instances"} <= kinds and "BRK-7D" in ids


async def test_after_an_attach_the_next_pass_waits_to_see_its_own_volume_not_the_instance(
    tmp_path: Path,
) -> None:
    # The volume shows its attach (ATTACHING, its instance id); the instance's page holds nothing
    # the volume's next plan reads, and reading it after every attach cost a page of instances
    # for every few volumes in a burst.
    replies, waits = await waits_after_an_attach(tmp_path, {"id": "BRK-V1"})
    since, kinds, ids = waits[0]
    assert since >= replies[0] and kinds == {"volumes"} and ids == {"BRK-V1"}


async def volume_beside_its_instance(client: BarrackClient, sim: Simulator, now: list[float]) -> Context:
    """A context on the clock ``now`` (createQuiet 10 s) in which instance "web" was just created
    and its BarrackInstance object records its id; Barrack listed once."""
    instance = await active_instance(client, sim, "web")
    refs = Registry()
    refs.objects[("BarrackInstance", "ns", "web")] = RefInfo(
        "uid-web", instance.id, False, str(instance.status)
    )
    ctx = Context(
        client=client, inventory=Inventory(client, clock=lambda: now[0]), refs=refs,
        timing=Timing(create_quiet=10.0), clock=lambda: now[0],
    )  # fmt: skip
    await ctx.inventory.poll_once()
    return ctx


async def test_a_new_volume_waiting_on_an_instance_not_listed_since_its_create_stays_quiet(
    sim: Simulator,
) -> None:
    # In a burst the instances are listed every half minute or so: a volume's "waiting for the
    # instance" said before the next instance listing only repeats what was known at its create.
    now = [1000.0]
    sim.account.config.transition_overrides["create_instance"] = 300.0
    async with make_client(sim) as client:
        ctx = await volume_beside_its_instance(client, sim, now)  # the instance CREATING for 300 s
        obj = volume_obj(instanceRef={"name": "web"})
        now[0] += 1
        assert (await volume.reconcile(ctx, obj)).defer_status  # created
        sim.account.clock.advance(10)
        now[0] += 1
        await ctx.inventory.poll_once(["volumes"])  # the volume is AVAILABLE; no instance listing
        now[0] += 14  # past createQuiet
        waiting = await volume.reconcile(ctx, obj)
        assert conditions(waiting)[ATTACHED] == (False, Reason.ATTACH_BLOCKED) and waiting.defer_status
        await ctx.inventory.poll_once(["instances"])  # listed since: still CREATING, now that is news
        listed = await volume.reconcile(ctx, obj)
        assert conditions(listed)[ATTACHED] == (False, Reason.ATTACH_BLOCKED) and not listed.defer_status


async def test_an_attach_sent_past_create_quiet_is_quiet_for_create_quiet_after_it(sim: Simulator) -> None:
    # In a burst a volume's instance comes up after the volume's quiet: the attach's "Attaching"
    # would be superseded by Ready at the next listing. Still ATTACHING createQuiet later: written.
    now = [1000.0]
    sim.account.config.transition_overrides["attach_volume"] = 60.0
    async with make_client(sim) as client:
        ctx = await volume_beside_its_instance(client, sim, now)
        obj = volume_obj(instanceRef={"name": "web"})
        assert (await volume.reconcile(ctx, obj)).defer_status  # created
        sim.account.clock.advance(10)
        now[0] += 12
        await ctx.inventory.poll_once()
        attaching = await volume.reconcile(ctx, obj)
        assert sim.calls[("attach_volumes", 200)] == 1 and attaching.defer_status
        sim.account.clock.advance(5)
        now[0] += 11
        await ctx.inventory.poll_once()
        still = await volume.reconcile(ctx, obj)  # ATTACHING, createQuiet after the attach
        assert conditions(still)[READY][0] is False and not still.defer_status


async def test_an_unexpected_error_in_a_pass_reads_operator_error_and_backs_off(tmp_path: Path) -> None:
    """The catch-all: a bug in one object's pass never stops the others; the object reads
    Synced=False OperatorError pointing at the log, and is tried again with backoff."""
    runtime = Runtime(Settings(api_key_file=tmp_path / "key", blocked_requeue=3.0))

    async def listed_once(kind: str) -> None:
        return None

    runtime.default.inventory.listed_once = listed_once  # type: ignore[method-assign]

    async def buggy(ctx: Context, obj: ObjectView) -> Outcome:
        raise KeyError("a field the code did not expect")

    metadata = {"uid": "uid-1", "name": "data", "namespace": "ns", "generation": 1, "finalizers": [FINALIZER]}
    body = {"metadata": metadata, "spec": {"region": "US-1", "sizeGB": 100}, "status": {}}
    first = await runtime.reconcile_once(VOLUME, buggy, body)
    synced = next(c for c in first.conditions if c.type == SYNCED)
    assert (synced.status, synced.reason) == (False, Reason.OPERATOR_ERROR)
    assert "unexpected KeyError" in synced.message and "see the operator log" in synced.message
    second = await runtime.reconcile_once(VOLUME, buggy, body)
    assert first.requeue_after == 3.0 and second.requeue_after == 6.0  # backing off
    await runtime.default.client.aclose()
