"""Issue 13's guarantees where the logic is pure enough to test in-process (the simulator behind
httpx's ASGI transport): a deletion never concludes "nothing on Barrack" while a create is in
flight or from a listing older than it; the poller outlives every error; a kind that cannot be
listed blocks its creates and releases; a pending firewall reference detaches nothing; failing
calls back off; lists are read whole; early returns leave no stale status; a volume of a deleted
instance is detached only when Barrack lists it so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from barrack_operator.barrack import ApiKeySource, ApiUnavailable, BarrackClient, Unauthorized
from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_operator.barrack.client import RetryPolicy
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.errors import MalformedReply
from barrack_operator.conditions import ATTACHED, READY, SYNCED, Reason
from barrack_operator.engine.references import Registry
from barrack_operator.engine.runtime import Runtime
from barrack_operator.inventory import Inventory
from barrack_operator.resources import firewall, volume
from barrack_operator.resources.common import complete_status, failed, failure_reason, finalize_guarded
from barrack_operator.resources.guard import ensure_exists, find_for_deletion
from barrack_operator.resources.model import (
    Context,
    CreateInFlight,
    ObjectDeleting,
    ObjectView,
    Outcome,
    RefInfo,
    Timing,
)
from barrack_operator.settings import Settings
from barrack_sim.app import Simulator
from tests.unit.conftest import SSH_PUBLIC_KEY, make_client

REQUEST = rq.CreateVolumeRequest(name="data", region="US-1", size_gb=100, volume_type="NVMe")


def volume_view(uid: str = "uid-1", status: dict[str, object] | None = None, **spec: object) -> ObjectView:
    return ObjectView(
        "BarrackVolume", "ns", "data", uid, 1, {"region": "US-1", "sizeGB": 100, **spec}, status or {}
    )


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def conditions(out: Outcome) -> dict[str, tuple[bool, str]]:
    return {c.type: (c.status, c.reason) for c in out.conditions}


async def active_instance(client: BarrackClient, sim: Simulator, name: str) -> m.VMInstance:
    key = await client.create_ssh_key(rq.CreateSSHKeyRequest(name=f"{name}-key", public_key=SSH_PUBLIC_KEY))
    image = (await client.list_os_images("US-1"))[0]
    instance = await client.create_instance(
        rq.DeploymentRequest(
            name=name, region="US-1", gpu_model="A40", gpu_count=1, image_id=image.id, ssh_key_ids=[key.id]
        )
    )
    sim.account.clock.advance(10)
    return instance


# 1. Create, then delete at once ------------------------------------------------------------------


async def test_create_then_delete_at_once_waits_for_the_create_in_flight(sim: Simulator) -> None:
    async with make_client(sim) as client:
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()  # the listing before the create: it holds nothing
        obj = volume_view()
        release = asyncio.Event()

        async def slow_create() -> m.Volume:
            await release.wait()  # as if queued behind the rate limiter, or slow at Barrack
            return await client.create_volume(REQUEST)

        creating = asyncio.create_task(
            ensure_exists(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume, slow_create)
        )
        await asyncio.sleep(0)
        with pytest.raises(CreateInFlight):
            await find_for_deletion(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume)
        out = await finalize_guarded(ctx, obj, lambda o: volume.finalize(ctx, obj))
        assert not out.done and conditions(out)[READY] == (False, Reason.PROGRESSING)
        release.set()
        created = (await creating).item
        found = await find_for_deletion(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume)
        assert found is not None and found.id == created.id


async def test_a_failed_create_is_looked_for_in_a_listing_begun_after_it_returned(sim: Simulator) -> None:
    async with make_client(sim) as client:
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()
        obj = volume_view()
        sim.faults.config.commit_then_fail_rate = 1.0  # Barrack creates it and answers 500
        with pytest.raises(ApiUnavailable):
            await ensure_exists(
                ctx,
                obj,
                lambda: ctx.inventory.volumes,
                client.get_volume,
                lambda: client.create_volume(REQUEST),
            )
        sim.faults.config.commit_then_fail_rate = 0.0
        poller = asyncio.create_task(ctx.inventory.run())
        try:
            found = await find_for_deletion(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume)
        finally:
            poller.cancel()
        assert found is not None and found.name == "data"


async def test_no_create_is_sent_once_deletion_began(sim: Simulator) -> None:
    async with make_client(sim) as client:
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()
        obj = volume_view()
        assert await find_for_deletion(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume) is None

        async def create() -> m.Volume:
            raise AssertionError("no create may be sent for an object being deleted")

        with pytest.raises(ObjectDeleting):
            await ensure_exists(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume, create)
        # The mark outlives the object's memory, for a reconcile still under way when it went.
        ctx.memory.forget(obj.uid, ctx.clock())
        with pytest.raises(ObjectDeleting):
            await ensure_exists(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume, create)


# 2. The poller never dies ------------------------------------------------------------------------


@pytest.mark.parametrize("malformation", ["json", "shape"])
async def test_the_poller_survives_malformed_replies_and_recovers(sim: Simulator, malformation: str) -> None:
    async with make_client(sim) as client:
        inventory = Inventory(client, fast_interval=0.01, slow_interval=0.05)
        sim.faults.config.malformed = {"list_volumes": malformation}  # type: ignore[dict-item]
        sim.account.create_volume(REQUEST)
        poller = asyncio.create_task(inventory.run())
        try:
            await eventually(lambda: inventory.failing_for("volumes") >= 3)
            assert not poller.done()
            assert isinstance(inventory.listing_error("volumes"), MalformedReply)
            assert inventory.error_counts[("volumes", "MalformedReply")] >= 3
            assert inventory.listing_error("instances") is None  # the other kinds list fine
            sim.faults.config.malformed = {}
            await eventually(lambda: inventory.listing_error("volumes") is None)
            assert [v.name for v in inventory.volumes.items.values()] == ["data"]
        finally:
            poller.cancel()


async def test_the_poller_survives_a_bug_in_its_change_callback(sim: Simulator) -> None:
    calls: list[set[str]] = []

    def on_change(ids: set[str]) -> None:
        calls.append(ids)
        raise RuntimeError("a bug")

    async with make_client(sim) as client:
        inventory = Inventory(client, fast_interval=0.01, slow_interval=0.02, on_change=on_change)
        poller = asyncio.create_task(inventory.run())
        try:
            sim.account.create_volume(REQUEST)
            await eventually(lambda: bool(calls))
            sim.account.create_volume(REQUEST.model_copy(update={"name": "more"}))
            await eventually(lambda: len(calls) >= 2)
            assert not poller.done()
        finally:
            poller.cancel()


async def test_an_empty_api_key_file_is_unauthorized_naming_the_file(sim: Simulator, tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("\n")
    async with make_client(sim) as reference:
        transport = reference._http._transport  # the same in-process simulator
    async with BarrackClient(
        "http://sim/api", ApiKeySource(key_file=key_file), transport=transport
    ) as client:
        inventory = Inventory(client)
        await inventory.poll_once()
        error = inventory.listing_error("volumes")
        assert isinstance(error, MissingApiKey)
        assert inventory.error_counts[("volumes", "MissingApiKey")] == 1
        reason, message = failure_reason(error)
        assert reason == Reason.UNAUTHORIZED and str(key_file) in message


# 3. Never act blind ------------------------------------------------------------------------------


async def test_a_kind_that_cannot_be_listed_blocks_its_creates_and_releases(sim: Simulator) -> None:
    async with make_client(sim, retry=RetryPolicy(attempts=1)) as client:
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        sim.faults.config.malformed = {"list_volumes": "json"}
        await ctx.inventory.poll_once()
        assert ctx.inventory.listing_error("instances") is None

        async def create() -> m.Volume:
            raise AssertionError("no create on a blind view")

        obj = volume_view()
        with pytest.raises(MalformedReply):
            await ensure_exists(ctx, obj, lambda: ctx.inventory.volumes, client.get_volume, create)
        out = await volume.reconcile(ctx, obj)
        assert conditions(out)[SYNCED] == (False, Reason.API_UNAVAILABLE)
        released = await volume.finalize(ctx, volume_view(uid="uid-2"))
        assert not released.done and conditions(released)[SYNCED] == (False, Reason.API_UNAVAILABLE)
        sim.faults.config.malformed = {}
        await ctx.inventory.poll_once(["volumes"])
        assert (await volume.finalize(ctx, volume_view(uid="uid-2"))).done


async def test_a_refused_key_shows_as_unauthorized_on_its_kind(sim: Simulator) -> None:
    async with make_client(sim, key="wrong-key-0b7d") as client:
        inventory = Inventory(client)
        await inventory.poll_once()
        error = inventory.listing_error("ssh_keys")
        assert isinstance(error, Unauthorized)
        assert failure_reason(error)[0] == Reason.UNAUTHORIZED


# 4. A pending reference never drops a firewall attachment ------------------------------------------


async def test_a_pending_reference_never_drops_a_firewall_attachment(sim: Simulator) -> None:
    async with make_client(sim) as client:
        a = await active_instance(client, sim, "a")
        b = await active_instance(client, sim, "b")
        fw = await client.create_firewall(rq.CreateFirewallRequest(name="web", region="US-1"))
        sim.account.clock.advance(10)
        await client.attach_firewall(fw.id, [a.id, b.id])
        sim.account.clock.advance(10)
        refs = Registry()
        refs.objects[("BarrackInstance", "ns", "a")] = RefInfo("uid-a", a.id, True, "ACTIVE")
        # "b" is recreated in Kubernetes and has no id yet; "c" does not exist at all.
        refs.objects[("BarrackInstance", "ns", "b")] = RefInfo("uid-b", None, False, None)
        ctx = Context(client=client, inventory=Inventory(client), refs=refs)
        await ctx.inventory.poll_once()
        spec = {"region": "US-1", "instanceRefs": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
        obj = ObjectView("BarrackFirewall", "ns", "web", "uid-fw", 1, spec, {"id": fw.id})
        out = await firewall.reconcile(ctx, obj)
        assert conditions(out)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        synced_message = next(c.message for c in out.conditions if c.type == SYNCED)
        assert "b (no Barrack id yet)" in synced_message and "c (no such BarrackInstance)" in synced_message
        assert sim.calls[("attach_firewall", 200)] == 1  # only the set-up above
        assert {x.instance_id for x in sim.account.firewalls[fw.id].attachments} == {a.id, b.id}


# 5. Backoff --------------------------------------------------------------------------------------


def test_a_failing_call_backs_off_to_five_minutes_and_says_when(tmp_path: Path) -> None:
    runtime = Runtime(Settings(api_key_file=tmp_path / "key", blocked_requeue=10.0))
    waits = []
    for _ in range(8):
        out = failed(Outcome(), ApiUnavailable("Internal server error"), Timing(blocked_requeue=10.0))
        runtime._back_off("uid-1", out)
        waits.append(out.requeue_after)
        synced = next(c for c in out.conditions if c.type == SYNCED)
        assert f"next try in {out.requeue_after:.0f}s" in synced.message
    assert waits == [10, 20, 40, 80, 160, 300, 300, 300]
    runtime._back_off("uid-1", Outcome())  # a pass without a failure starts the count again
    out = failed(Outcome(), ApiUnavailable("Internal server error"), Timing(blocked_requeue=10.0))
    runtime._back_off("uid-1", out)
    assert out.requeue_after == 10


# 6. Lists are read whole -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["omit_total_pages", "understate_total_pages"])
async def test_lists_are_read_whole_whatever_total_pages_says(sim: Simulator, fault: str) -> None:
    for n in range(250):
        sim.account.create_volume(REQUEST.model_copy(update={"name": f"v{n}"}))
    sim.faults.config.pagination = fault  # type: ignore[assignment]
    async with make_client(sim) as client:
        names = {v.name async for v in client.iter_volumes()}
    assert len(names) == 250
    assert sim.calls[("list_volumes", 200)] == 3  # 100, 100, then a short page ends it


async def test_an_exact_multiple_of_the_page_ends_on_an_empty_page(sim: Simulator) -> None:
    for n in range(200):
        sim.account.create_volume(REQUEST.model_copy(update={"name": f"v{n}"}))
    sim.faults.config.pagination = "understate_total_pages"
    async with make_client(sim) as client:
        assert len([v async for v in client.iter_volumes()]) == 200
    assert sim.calls[("list_volumes", 200)] == 3


# 7. Barrack's other dialect ----------------------------------------------------------------------


async def test_a_429_without_retry_after_backs_off_exponentially_from_one_second(sim: Simulator) -> None:
    sim.dialect = "legacy"
    sim.faults.config.rate_limit_rps = 0.001  # one request, then 429s for a long while
    async with make_client(sim, retry=RetryPolicy(attempts=4, base_delay=0.001)) as client:
        paused: list[float] = []
        client.limiter.pause_for = paused.append  # type: ignore[method-assign]
        await client.get_balance()
        with pytest.raises(Exception, match="Too many requests") as caught:
            await client.get_balance()
    assert paused == [1.0, 2.0, 4.0]
    assert caught.value.retry_after == 8.0  # type: ignore[attr-defined]


# 8. Status is never stale ------------------------------------------------------------------------


async def test_an_early_return_still_reports_state_and_attachment(sim: Simulator) -> None:
    async with make_client(sim) as client:
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        created = await client.create_volume(REQUEST)
        sim.account.clock.advance(10)
        await ctx.inventory.poll_once()
        # The instanceRef names an object with no id: reconcile returns early (ReferenceNotReady).
        obj = volume_view(status={"id": created.id, "state": "CREATING"}, instanceRef={"name": "web-2"})
        out = complete_status(ctx, obj, await volume.reconcile(ctx, obj))
        assert out.status["state"] == "AVAILABLE" and out.status["id"] == created.id
        assert conditions(out)[SYNCED] == (False, Reason.REFERENCE_NOT_READY)
        assert conditions(out)[ATTACHED] == (False, Reason.REFERENCE_NOT_READY)  # detached, and why


# 9. After an instance is deleted -----------------------------------------------------------------


async def test_a_volume_of_a_deleted_instance_is_detached_only_when_barrack_lists_it_so(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        instance = await active_instance(client, sim, "web-1")
        vol = await client.create_volume(REQUEST)
        sim.account.clock.advance(10)
        await client.attach_volumes(instance.id, [vol.id])
        sim.account.clock.advance(10)
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()
        await client.delete_instance(instance.id)
        sim.account.clock.advance(10)
        await ctx.inventory.poll_once(["instances"])  # the instance is gone; volumes not listed since
        obj = volume_view(status={"id": vol.id})
        out = await volume.reconcile(ctx, obj)
        assert conditions(out)[ATTACHED] == (True, Reason.ATTACHED)
        assert conditions(out)[READY] == (False, Reason.PROGRESSING)
        assert not any(k[0] == "detach_volumes" for k in sim.calls)
        await ctx.inventory.poll_once(["volumes"])
        out = await volume.reconcile(ctx, obj)
        assert conditions(out)[ATTACHED] == (False, Reason.DETACHED)
        assert conditions(out)[READY] == (True, Reason.AVAILABLE)


async def test_the_supervisor_starts_the_poller_again_if_it_ever_ends(tmp_path: Path) -> None:
    runtime = Runtime(Settings(api_key_file=tmp_path / "key", poll_interval=0.001))
    runs: list[int] = []
    forever = asyncio.Event()

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("a bug the poller did not catch")
        if len(runs) == 2:
            return  # ended without an error
        await forever.wait()

    account = runtime.default
    account.inventory.run = run  # type: ignore[method-assign]
    supervisor = asyncio.create_task(account._supervise_poller())
    try:
        await eventually(lambda: len(runs) == 3)
        assert runtime.poller_alive()
    finally:
        supervisor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await supervisor
    assert not runtime.poller_alive()
    await account.client.aclose()
