"""Placement's decisions, pure (judge, allocate), and the capacity board against the simulator
in-process: one stock read per poll while instances wait and none while none do, a change in
stock wakes those it can serve, and an alternative Barrack refused is tried again only once its
stock changes."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.capacity import CapacityBoard, Place, Want, allocate, judge
from barrack_operator.costs import PriceBook
from barrack_operator.resources import specs
from barrack_operator.resources.instance import (
    InstanceInputs,
    InstanceReconciler,
    alternative_of,
    places_of,
    source_region_mismatch,
)
from barrack_sim.app import Simulator
from tests.unit.conftest import make_client

H100, A100 = "H100-SXM5-80GB", "A100-PCIe-80GB"
US, EU, CA = "US-1", "NORWAY-1", "CANADA-1"
PRICE = {H100: 3.0, A100: 1.5}


def _hourly(place: Place) -> float | None:
    return PRICE.get(place.gpu_model, 1.0) * place.gpu_count


def _want(uid: str = "a", created: str = "2026-12-07T10:00:00Z", **fields: object) -> Want:
    places = fields.pop("places", (Place(US, H100, 1), Place(EU, H100, 1), Place(CA, A100, 2)))
    return Want(uid=uid, created=created, places=places, **fields)  # type: ignore[arg-type]


JUDGE_CASES = [
    ("the first alternative in stock is taken", {(US, H100): 1}, {}, 0, []),
    ("out of stock in the first: the second", {(US, H100): 0, (EU, H100): 4}, {}, 1, ["stock 0 of 1"]),
    ("nothing in stock: nowhere, each lack named", {}, {}, None, ["stock 0 of 1", "stock 0 of 1", "stock 0 of 2"]),
    ("two GPUs need two", {(CA, A100): 1}, {}, None, ["stock 0 of 1", "stock 0 of 1", "stock 1 of 2"]),
    ("a cap skips the dear ones", {(US, H100): 8, (CA, A100): 8},
     {"max_price": 2.0, "places": (Place(US, H100, 1), Place(CA, A100, 1))}, 1, ["price 3/h above the cap 2/h"]),
    ("a cap below every price fits nothing", {(US, H100): 8, (EU, H100): 8, (CA, A100): 8}, {"max_price": 1.0},
     None, ["price 3/h above the cap 1/h", "price 3/h above the cap 1/h", "price 3/h above the cap 1/h"]),
    ("a volume's region skips the others", {(US, H100): 8, (EU, H100): 8}, {"pinned": (EU, "BarrackVolume data is in NORWAY-1")},
     1, ["skipped, BarrackVolume data is in NORWAY-1"]),
    ("a region without the OS image is skipped", {(US, H100): 8, (EU, H100): 8},
     {"no_image": frozenset({US}), "image": "'Ubuntu 22.04'"}, 1, ["Barrack has no OS image 'Ubuntu 22.04' there"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "stock", "fields", "index", "lacks"), JUDGE_CASES, ids=[c[0] for c in JUDGE_CASES]
)
def test_judge(case: str, stock: dict, fields: dict, index: int | None, lacks: list[str]) -> None:  # type: ignore[type-arg]
    got = judge(_want(**fields), stock, _hourly)
    assert got.index == index, case
    assert [lack.split(": ", 1)[1] for lack in got.lacks] == lacks, case


def test_a_refused_alternative_is_skipped_until_its_stock_changes() -> None:
    got = judge(_want(), {(US, H100): 8, (EU, H100): 8}, _hourly, refused={0})
    assert got.index == 1 and "refused it as out of stock" in got.lacks[0]


def test_the_message_names_every_alternative_and_the_next_look() -> None:
    placement = judge(_want(max_price=2.0), {(US, H100): 0, (EU, H100): 8}, _hourly)
    message = placement.message(2.0)
    assert "H100-SXM5-80GB x1 in US-1: stock 0 of 1" in message
    assert "H100-SXM5-80GB x1 in NORWAY-1: price 3/h above the cap 2/h" in message
    assert "A100-PCIe-80GB x2 in CANADA-1: stock 0 of 2" in message
    assert "every 2 s" in message


def test_scarce_stock_goes_to_the_oldest_waiting_first() -> None:
    one = (Place(US, H100, 1),)
    wants = [
        _want("young", "2026-12-07T10:05:00Z", places=one),
        _want("old", "2026-12-07T10:00:00Z", places=one),
        _want("middle", "2026-12-07T10:02:00Z", places=one),
    ]
    got = allocate(wants, {(US, H100): 2}, _hourly)
    assert {uid for uid, p in got.items() if p.index is not None} == {"old", "middle"}
    assert got["young"].index is None and "stock 0 of 1" in got["young"].lacks[0]


def test_an_older_instance_that_fits_nowhere_holds_nothing_back() -> None:
    wants = [
        _want("old", "2026-12-07T10:00:00Z", places=(Place(US, H100, 8),)),
        _want("young", "2026-12-07T10:05:00Z", places=(Place(US, H100, 1),)),
    ]
    got = allocate(wants, {(US, H100): 2}, _hourly)
    assert got["old"].index is None and got["young"].index == 0


async def _board(sim: Simulator, woken: list[str]) -> CapacityBoard:
    client = make_client(sim)
    return CapacityBoard(client, PriceBook(client), interval=0.05, wake=woken.append)


async def test_the_board_reads_stock_once_per_poll_while_instances_wait_and_never_when_none_do(
    sim: Simulator,
) -> None:
    sim.account.shelf.configure({"stock": [{"region": US, "gpu_model": H100, "available": 0}]}, 0)
    woken: list[str] = []
    board = await _board(sim, woken)
    placed = await board.place(_want("a", places=(Place(US, H100, 1),)))
    assert placed.index is None and board.reads == 1
    await asyncio.sleep(0.32)
    reads_waiting = board.reads
    assert 4 <= reads_waiting <= 8, f"about one read per 0.05 s poll, not {reads_waiting}"
    assert woken == []  # nothing changed: nobody is woken
    sim.account.shelf.configure({"stock": [{"region": US, "gpu_model": H100, "available": 1}]}, 0)
    for _ in range(40):
        if woken:
            break
        await asyncio.sleep(0.02)
    assert woken == ["a"], "a change in stock wakes the instance it can serve"
    board.forget("a")
    await asyncio.sleep(0.15)
    idle = board.reads
    await asyncio.sleep(0.3)
    assert board.reads == idle, "no read while nothing waits"
    await board.stop()
    await board.client.aclose()


async def test_a_refusal_is_not_tried_again_until_stock_changes(sim: Simulator) -> None:
    woken: list[str] = []
    board = await _board(sim, woken)
    want = _want("a", places=(Place(US, H100, 1), Place(EU, H100, 1)))
    assert (await board.place(want)).index == 0
    board.refused("a", 0)
    assert (await board.place(want)).index == 1  # at once, the next alternative
    board.refused("a", 1)
    assert (await board.place(want)).index is None
    await asyncio.sleep(0.2)  # polls with no change: still refused
    assert (await board.place(want)).index is None and woken == []
    sim.account.shelf.configure({"stock": [{"region": EU, "gpu_model": H100, "available": 3}]}, 0)
    for _ in range(40):
        if woken:
            break
        await asyncio.sleep(0.02)
    assert woken == ["a"] and (await board.place(want)).index == 1  # EU changed; US did not
    await board.stop()
    await board.client.aclose()


def _spec(**fields: object) -> specs.BarrackInstanceSpec:
    base: dict[str, object] = {"imageId": "BRK-1I", "sshKeyRefs": [{"name": "k"}]}
    return specs.BarrackInstanceSpec.model_validate({**base, **fields})


PLACEMENT = [{"region": US, "gpuModel": H100}, {"region": CA, "gpuModel": A100, "gpuCount": 2}]


def test_a_boot_source_pins_every_alternative_to_its_region() -> None:
    spec = _spec(placement=PLACEMENT)
    inputs = InstanceInputs((), None, (), source_region=("image BRK-9I", US), places=places_of(spec))
    blocked = source_region_mismatch(spec, inputs)
    assert blocked is not None and blocked.reason == "InvalidSpec"
    assert (
        "placement[1] (CANADA-1) is not" in blocked.message
        and "keep only alternatives in US-1" in blocked.message
    )
    flat = _spec(region=CA, gpuModel=A100)
    assert "set region: US-1" in source_region_mismatch(flat, replace(inputs, places=places_of(flat))).message  # type: ignore[union-attr]
    assert source_region_mismatch(_spec(region=US, gpuModel=H100), inputs) is None


def test_an_instance_matches_one_of_its_alternatives_or_is_a_mismatch() -> None:
    spec = _spec(placement=PLACEMENT)
    reconciler = InstanceReconciler()
    at_ca = m.VMInstance(id="BRK-1D", name="x", status="ACTIVE", region=CA, gpu_model=A100, gpu_count=2)
    assert reconciler.mismatches(spec, at_ca) == []
    assert alternative_of(places_of(spec), at_ca) == 1
    elsewhere = at_ca.model_copy(update={"gpu_count": 1})
    assert "none of the alternatives" in reconciler.mismatches(spec, elsewhere)[0]
    flat = _spec(region=CA, gpuModel=A100)  # gpuCount left out: one GPU
    assert reconciler.mismatches(flat, elsewhere) == []
    assert "gpuCount: spec 1, Barrack 2" in reconciler.mismatches(flat, at_ca)


def test_stock_refused_to_another_instance_reads_so_and_marks_the_wait_as_out_of_stock() -> None:
    got = judge(_want(places=(Place(US, H100, 1),)), {(US, H100): 0}, _hourly, short={(US, H100): 4})
    assert got.index is None and got.refused
    assert "refused a create there as out of stock moments ago though it lists 4" in got.lacks[0]
    plain = judge(_want(places=(Place(US, H100, 1),)), {(US, H100): 0}, _hourly)
    assert not plain.refused and "stock 0 of 1" in plain.lacks[0]
