"""Issue 16's money against real processes: every billed object's status shows what it costs per
hour at Barrack's prices in its power state now, and what it has cost so far."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from barrack_sim import money
from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    Kube,
    Operator,
    Sim,
    instance,
    running_operator,
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
    for power, state, hourly in (
        ("Stopped", "SHUTOFF", full),  # a stopped GPU costs as much as a running one
        ("Hibernated", "HIBERNATED", money.HIBERNATED_HOURLY["USD"]),
        ("Running", "ACTIVE", full),
    ):
        kube.patch("binst", "gpu", {"spec": {"powerState": power}})
        kube.wait_condition("binst", "gpu", "Ready", "True", timeout=60)  # over the patched spec
        assert kube.get("binst", "gpu")["status"]["state"] == state  # type: ignore[index]
        _wait_cost(kube, "binst", "gpu", hourly)
        instance_id = kube.get("binst", "gpu")["status"]["id"]  # type: ignore[index]
        assert sim.call("GET", f"/instances/{instance_id}/")["instance"]["status"] == state
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


def test_credit_depletion_hibernates_holds_restores_and_a_top_up_brings_them_back(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """The account runs dry on the simulator's clock: Barrack hibernates the instance, the object
    says CreditsDepleted and no restore is sent into refusals; after a top-up it is restored
    (its powerState says Running), with a new public IP, which its connection Secret follows."""
    sim.admin("config", {"balance": 2.0})  # under two hours of A40 x2
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image(), gpuCount=2, writeConnectionSecretToRef={"name": "gpu-ssh"}))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    first_ip = kube.get("binst", "gpu")["status"]["publicIP"]  # type: ignore[index]
    secret = wait_for(lambda: kube.get("secret", "gpu-ssh"), 30, what="the connection Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["host"] == first_ip and data["username"] == "ubuntu" and data["port"] == "22"
    assert data["ssh"] == f"ssh -p 22 ubuntu@{first_ip}" and data["privateIP"]
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "BarrackInstance",
        "gpu",
        kube.get("binst", "gpu")["metadata"]["uid"],
    )  # type: ignore[index]

    sim.admin("advance", {"seconds": 3 * 3600})  # the balance runs out; Barrack hibernates
    depleted = kube.wait_condition("binst", "gpu", "Ready", "False", reason="CreditsDepleted", timeout=60)
    assert "top up the account" in depleted["message"]
    restores_before = sim.calls().get("restore_instance 402", 0) + sim.calls().get("restore_instance 200", 0)
    time.sleep(4)  # several passes at the test's intervals
    calls = sim.calls()
    assert calls.get("restore_instance 402", 0) + calls.get("restore_instance 200", 0) == restores_before, (
        calls
    )

    sim.admin("top-up", {"amount": 100})
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    new_ip = kube.get("binst", "gpu")["status"]["publicIP"]  # type: ignore[index]
    assert new_ip and new_ip != first_ip
    wait_for(
        lambda: base64.b64decode(kube.get("secret", "gpu-ssh")["data"]["host"]).decode() == new_ip,  # type: ignore[index]
        30,
        what="the connection Secret to follow the new IP",
    )


def test_a_hibernation_for_lack_of_credit_shows_within_a_fast_poll(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Listings of steady kinds come each idle interval (60 s here); while the account's credit is
    low its instances are listed, and its balance read, each fast poll, so a Ready instance that
    Barrack hibernates when the balance runs out reads Ready=False CreditsDepleted within seconds,
    long before the next idle listing, and no restore is sent into refusals."""
    settings = {**OPERATOR_SETTINGS, "IDLE_POLL_INTERVAL": "60", "DRIFT_INTERVAL": "60"}
    sim.admin("config", {"balance": 2.0})  # under two hours of A40 x2: CreditsLow from the start
    with running_operator(kube, sim, api_key_file, tmp_path, settings, request=request):
        kube.apply(ssh_key())
        kube.apply(instance("gpu", sim.image(), gpuCount=2))
        kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
        time.sleep(3)  # past the create's own looks: the instance is steady, as any Ready one
        sim.admin("advance", {"seconds": 3 * 3600})  # the balance runs out; Barrack hibernates
        hibernated = time.monotonic()
        kube.wait_condition("binst", "gpu", "Ready", "False", reason="CreditsDepleted", timeout=20)
        print(f"Ready=False {time.monotonic() - hibernated:.1f} s after the hibernation (idle interval 60 s)")
        calls = sim.calls()
        assert calls.get("restore_instance 402", 0) + calls.get("restore_instance 200", 0) == 0, calls
