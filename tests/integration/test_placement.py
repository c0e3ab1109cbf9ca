"""Placement, end to end: an instance with alternatives lands at the first whose GPUs Barrack has
in stock and whose price is within the cap, waits visibly (NoCapacity) while none fits, lands
within a poll of stock appearing, moves on at once from a create Barrack refuses as out of
stock, serves the oldest waiting instance first, and takes volumes along: one with a region pins
it there, one without follows it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import Kube, Operator, Sim, ssh_key, volume

pytestmark = pytest.mark.integration

H100, A40 = "H100-SXM5-80GB", "A40"
US, NORWAY, CANADA = "US-1", "NORWAY-1", "CANADA-1"


def placed(name: str, places: list[tuple[str, str, int]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackInstance",
        "metadata": {"name": name},
        "spec": {
            "placement": [{"region": r, "gpuModel": g, "gpuCount": n} for r, g, n in places],
            "image": {"name": "Ubuntu 22.04"},
            "sshKeyRefs": [{"name": "ops-key"}],
            **spec,
        },
    }


def shelf(sim: Sim, **levels: int) -> None:
    """Stock levels by ``REGION__MODEL`` (dashes as underscores), e.g. ``US_1__A40=2``."""
    entries = []
    for key, available in levels.items():
        region, model = key.split("__")
        entries.append(
            {"region": region.replace("_", "-"), "gpu_model": model.replace("_", "-"), "available": available}
        )
    sim.admin("stock", {"stock": entries})


def creates(sim: Sim) -> dict[str, int]:
    """create_instance calls by answer status."""
    return {k.split()[1]: n for k, n in sim.calls().items() if k.startswith("create_instance ")}


def barrack_instance(sim: Sim, name: str) -> dict[str, Any] | None:
    return next((i for i in sim.inventory()["instances"] if i["name"] == name), None)


def price(sim: Sim, model: str, count: int = 1) -> float:
    quote = sim.call(
        "POST", "/pricing/", {"resource_type": "instance", "gpu_model": model, "gpu_count": count}
    )
    return float(quote["pricing"]["hourly"])


def test_an_instance_lands_at_the_first_alternative_in_stock_and_says_where(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    shelf(sim, US_1__H100_SXM5_80GB=0, NORWAY_1__H100_SXM5_80GB=4)
    kube.apply(ssh_key())
    kube.apply(placed("trainer", [(US, H100, 1), (NORWAY, H100, 1), (CANADA, A40, 1)]))
    kube.wait_condition("binst", "trainer", "Ready", "True", timeout=90)
    landed = barrack_instance(sim, "trainer")
    assert landed is not None and landed["region"] == NORWAY and landed["gpu_model"] == H100
    norway_ubuntu = next(
        i["id"]
        for i in sim.call("GET", f"/os-images/?region={NORWAY}")["os_images"]
        if i["name"] == "Ubuntu 22.04"
    )
    assert landed["image_id"] == norway_ubuntu, "spec.image is resolved in the region it lands in"
    assert creates(sim) == {"201": 1} or creates(sim) == {"200": 1}, "one create, at the alternative in stock"
    status = kube.get("binst", "trainer")["status"]  # type: ignore[index]
    wait_for(lambda: (kube.get("binst", "trainer") or {}).get("status", {}).get("placement", {}).get("hourlyPrice"),
             30, what="the placement's price")  # fmt: skip
    status = kube.get("binst", "trainer")["status"]  # type: ignore[index]
    assert status["placement"]["region"] == NORWAY and status["placement"]["alternative"] == 1
    assert status["placement"]["gpuModel"] == H100 and status["placement"]["gpuCount"] == 1
    assert status["placement"]["hourlyPrice"] == pytest.approx(price(sim, H100))
    table = kube.run("get", "binst", "trainer").stdout
    assert "REGION" in table and "GPU" in table and NORWAY in table and H100 in table


def test_nothing_fits_waits_as_no_capacity_then_lands_within_a_poll_of_stock(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    shelf(sim, US_1__A40=0, NORWAY_1__A40=1)
    kube.apply(ssh_key())
    kube.apply(placed("waiter", [(US, A40, 1), (NORWAY, A40, 2)]))
    condition = kube.wait_condition("binst", "waiter", "Ready", "False", reason="NoCapacity", timeout=60)
    assert "A40 x1 in US-1: stock 0 of 1" in condition["message"]
    assert "A40 x2 in NORWAY-1: stock 1 of 2" in condition["message"]
    assert "reads Barrack's stock every 0.5 s" in condition["message"]
    synced = kube.condition("binst", "waiter", "Synced")
    assert synced is not None and synced["reason"] == "NoCapacity"
    time.sleep(2)  # four stock reads at the 0.5 s poll: still no create
    assert creates(sim) == {}, "no create is sent while nothing fits"
    shelf(sim, NORWAY_1__A40=2)
    appeared = time.monotonic()
    wait_for(lambda: creates(sim), 30, what="the create once stock appeared")
    assert time.monotonic() - appeared < 10, "landed within a few polls of stock appearing"
    kube.wait_condition("binst", "waiter", "Ready", "True", timeout=60)
    assert sum(creates(sim).values()) == 1
    assert barrack_instance(sim, "waiter")["region"] == NORWAY  # type: ignore[index]


def test_a_price_cap_skips_dearer_alternatives(kube: Kube, sim: Sim, operator: Operator) -> None:
    cap = price(sim, A40) + 0.01
    assert price(sim, H100) > cap
    kube.apply(ssh_key())
    kube.apply(placed("thrifty", [(US, H100, 1), (US, A40, 1)], maxHourlyPrice=cap))
    kube.wait_condition("binst", "thrifty", "Ready", "True", timeout=90)
    assert barrack_instance(sim, "thrifty")["gpu_model"] == A40  # type: ignore[index]
    kube.apply(placed("too-dear", [(US, H100, 1)], maxHourlyPrice=cap))
    condition = kube.wait_condition("binst", "too-dear", "Ready", "False", reason="NoCapacity", timeout=60)
    assert f"above the cap {cap:g}/h" in condition["message"]
    assert barrack_instance(sim, "too-dear") is None


def test_a_create_refused_as_out_of_stock_moves_on_to_the_next_alternative_at_once(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    # Barrack lists 4 H100 in US-1 that other customers took a moment ago: a create is refused.
    shelf(sim, US_1__H100_SXM5_80GB=0, NORWAY_1__H100_SXM5_80GB=2)
    sim.admin("stock", {"phantom": [{"region": US, "gpu_model": H100, "available": 4}]})
    kube.apply(ssh_key())
    kube.apply(placed("stuck", [(US, H100, 1)]))
    condition = kube.wait_condition("binst", "stuck", "Synced", "False", reason="OutOfStock", timeout=60)
    assert "H100-SXM5-80GB x1 in US-1: Barrack refused it as out of stock" in condition["message"]
    assert creates(sim) == {"409": 1}
    kube.apply(placed("mover", [(US, H100, 1), (NORWAY, H100, 1)]))
    kube.wait_condition("binst", "mover", "Ready", "True", timeout=90)
    assert barrack_instance(sim, "mover")["region"] == NORWAY  # type: ignore[index]
    time.sleep(3)  # six stock reads at the 0.5 s poll, the listing unchanged
    assert creates(sim).get("409") == 1, "one refusal per change in stock: not one per poll, nor per instance"
    assert kube.condition("binst", "stuck", "Synced")["reason"] == "OutOfStock"  # type: ignore[index]
    sim.admin("stock", {"phantom": [{"region": US, "gpu_model": H100, "available": 0}],
                        "stock": [{"region": US, "gpu_model": H100, "available": 1}]})  # fmt: skip
    kube.wait_condition("binst", "stuck", "Ready", "True", timeout=60)


def test_a_refused_create_moves_on_within_the_same_pass(kube: Kube, sim: Sim, operator: Operator) -> None:
    shelf(sim, US_1__H100_SXM5_80GB=0, NORWAY_1__H100_SXM5_80GB=2)
    sim.admin("stock", {"phantom": [{"region": US, "gpu_model": H100, "available": 4}]})
    kube.apply(ssh_key())
    kube.apply(placed("hopper", [(US, H100, 1), (NORWAY, H100, 1)]))
    kube.wait_condition("binst", "hopper", "Ready", "True", timeout=90)
    refused = sim.admin("stock")["refusals"]
    made = next(c for c in sim.admin("created") if c["name"] == "hopper")
    assert [r["region"] for r in refused] == [US] and made["at"] - refused[0]["at"] < 1.0, (
        "the next alternative's create follows the refusal at once, not a poll later"
    )


def test_scarce_stock_goes_to_the_oldest_waiting_instance_first(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    shelf(sim, CANADA_1__A40=0)
    kube.apply(ssh_key())
    for name in ("first", "second", "third"):
        kube.apply(placed(name, [(CANADA, A40, 1)]))
        time.sleep(1.1)  # creationTimestamp has a resolution of a second
    for name in ("first", "second", "third"):
        kube.wait_condition("binst", name, "Ready", "False", reason="NoCapacity", timeout=60)
    for served in ("first", "second", "third"):  # one GPU at a time: the oldest waiting one takes it
        shelf(sim, CANADA_1__A40=1)
        kube.wait_condition("binst", served, "Ready", "True", timeout=60)
        time.sleep(2)  # four stock reads: nobody else was sent
        made = [c["name"] for c in sim.admin("created") if c["name"] in ("first", "second", "third")]
        assert made == ["first", "second", "third"][: len(made)] and made[-1] == served, made
    assert creates(sim).get("409") is None, "nobody was sent to a shelf another took"


def test_a_volume_with_a_region_pins_its_instance_and_one_without_follows_it(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(volume("data", region=NORWAY, instanceRef={"name": "pinned"}))
    kube.wait_condition("bvol", "data", "Synced", "False", timeout=60)  # waits for its instance
    kube.apply(placed("pinned", [(US, A40, 1), (NORWAY, A40, 1)]))
    kube.wait_condition("binst", "pinned", "Ready", "True", timeout=90)
    assert barrack_instance(sim, "pinned")["region"] == NORWAY  # type: ignore[index]
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)

    shelf(sim, US_1__A40=0, CANADA_1__A40=3)
    kube.apply(placed("roamer", [(US, A40, 1), (CANADA, A40, 1)]))
    follower = volume("scratch", instanceRef={"name": "roamer"})
    del follower["spec"]["region"]  # it follows its instance
    kube.apply(follower)
    kube.wait_condition("binst", "roamer", "Ready", "True", timeout=90)
    kube.wait_condition("bvol", "scratch", "Attached", "True", timeout=90)
    made = next(v for v in sim.inventory()["volumes"] if v["name"] == "scratch")
    assert made["region"] == CANADA
    assert kube.get("bvol", "scratch")["status"]["region"] == CANADA  # type: ignore[index]
