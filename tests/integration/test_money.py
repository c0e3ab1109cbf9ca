"""Issue 16's money against real processes: every billed object's status shows what it costs per
hour at Barrack's prices in its power state now, and what it has cost so far."""

from __future__ import annotations

import pytest

from barrack_sim import money
from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    Kube,
    Operator,
    Sim,
    instance,
    ssh_key,
    volume,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_settings() -> dict[str, str]:
    return {**OPERATOR_SETTINGS, "BILLING_INTERVAL": "2"}


def _cost(kube: Kube, kind: str, name: str) -> dict[str, float] | None:
    return ((kube.get(kind, name) or {}).get("status") or {}).get("cost")


def _wait_cost(kube: Kube, kind: str, name: str, hourly: float) -> dict[str, float]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (c := _cost(kube, kind, name)) and c["hourly"] == pytest.approx(hourly) and c,
        60,
        what=f"{kind}/{name} cost.hourly = {hourly}",
    )


def test_cost_follows_the_power_state_at_barracks_prices(kube: Kube, sim: Sim, operator: Operator) -> None:
    full = money.GPU_HOURLY_USD["A40"] * 2
    nvme = money.VOLUME_TB_HOURLY_USD["NVMe"] * 500 / 1000
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image(), gpuCount=2))
    kube.apply(volume("data", sizeGB=500, volumeType="NVMe"))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    assert _wait_cost(kube, "binst", "gpu", full)["currency"] == "USD"
    assert _wait_cost(kube, "bvol", "data", nvme)["currency"] == "USD"
    listed = kube.run("get", "binst", "gpu").stdout
    assert "COST/H" in listed and f"{full:g}" in listed
    for power, hourly in (
        ("Stopped", full),
        ("Hibernated", money.HIBERNATED_HOURLY["USD"]),
        ("Running", full),
    ):
        kube.patch("binst", "gpu", {"spec": {"powerState": power}})
        _wait_cost(kube, "binst", "gpu", hourly)
        kube.wait_condition("binst", "gpu", "Ready", "True", timeout=60)
    # What it cost so far comes from Barrack's billing records.
    instance_id = kube.get("binst", "gpu")["status"]["id"]  # type: ignore[index]
    sim.admin("advance", {"seconds": 3600})
    billed = sim.call("GET", f"/instances/{instance_id}/billing/")["summary"]["totalCost"]
    assert billed >= full * 0.99
    accrued = wait_for(
        lambda: (
            (c := _cost(kube, "binst", "gpu")) and (c.get("accrued") or 0) >= billed * 0.99 and c["accrued"]
        ),
        60,
        what="status.cost.accrued from the billing route",
    )
    assert accrued == pytest.approx(billed, rel=0.05)
