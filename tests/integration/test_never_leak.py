"""Issue 13 against real processes: creates deleted while they wait or fly leave nothing on Barrack;
the poller outlives malformed replies and an empty key file; a kind Barrack cannot list blocks its
own creates and releases (and shows on its Ready objects), while the other kinds carry on; the
health endpoints tell the kubelet which is which."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml

from barrack_operator.devcluster.cluster import free_port
from tests.integration.conftest import (
    API_KEY,
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
from tests.integration.scenarios import barrack_volume

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _created(sim: Sim, prefix: str) -> list[str]:
    return [c["id"] for c in sim.admin("created") if c["name"].startswith(prefix)]


def test_create_then_delete_at_once_leaves_nothing_on_barrack(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.wait_condition("bkey", "ops-key", "Ready", "True")
    # Slow creates: each waits 1.5 s at Barrack, and the operator's other creates queue meanwhile.
    sim.admin("faults", {"route_latency": {"create_volume": 1.5, "create_instance": 1.5}})
    pairs = []
    for n in range(10):
        pairs += [volume(f"pair-vol-{n}"), instance(f"pair-inst-{n}", sim.image())]
    kube.apply(yaml.safe_dump_all(pairs))
    for n in range(10):  # deleted at once, and at moments spread over the creates' flight
        kube.run("delete", "bvol,binst", f"pair-vol-{n}", f"pair-inst-{n}", "--wait=false", check=False)
        time.sleep(0.25)

    def all_gone() -> bool:
        left = kube.run("get", "bvol,binst", "-o", "name").stdout.split()
        return not [name for name in left if "pair-" in name]

    wait_for(all_gone, 120, what="every pair's object to go")
    sim.admin("faults", {"route_latency": {}})

    def barrack_empty() -> bool:
        inventory = sim.inventory()
        return not [r for kind in ("volumes", "instances") for r in inventory[kind] if "pair-" in r["name"]]

    wait_for(barrack_empty, 60, what="Barrack to hold nothing of the pairs")
    # Creates were in flight when their objects went: the test reached the window it is about.
    assert _created(sim, "pair-"), "no create was sent: the deletions all came first"
    per_object = Counter(c["name"] for c in sim.admin("created") if c["name"].startswith("pair-"))
    assert max(per_object.values()) == 1, f"an object's resource was created twice: {per_object}"


@pytest.fixture
def operator_settings() -> dict[str, str]:
    return {**OPERATOR_SETTINGS, "READINESS_MAX_LISTING_AGE": "4", "STALE_AFTER_FAILED_POLLS": "3"}


def test_a_kind_barrack_cannot_list_blocks_only_itself_and_recovers_without_a_restart(
    kube: Kube,
    sim: Sim,
    api_key_file: Path,
    tmp_path: Path,
    operator_settings: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    health, metrics = free_port(), free_port()
    with running_operator(
        kube,
        sim,
        api_key_file,
        tmp_path,
        operator_settings,
        liveness_port=health,
        metrics_port=metrics,
        request=request,
    ) as op:
        pid = op.pid
        kube.apply(ssh_key())
        kube.apply(volume("before"))
        kube.wait_condition("bvol", "before", "Ready", "True")
        kept_id = kube.get("bvol", "before")["status"]["id"]  # type: ignore[index]
        wait_for(lambda: _get(f"http://127.0.0.1:{health}/readyz")[0] == 200, 30, what="/readyz 200")

        sim.admin("faults", {"malformed": {"list_volumes": "json"}})
        stale = kube.wait_condition("bvol", "before", "Synced", "False", reason="ApiUnavailable", timeout=30)
        assert "may be out of date" in stale["message"] and "not JSON" in stale["message"]
        kube.apply(volume("during"))  # the volumes listing fails now: nothing may be created
        during = kube.wait_condition("bvol", "during", "Synced", "False", reason="ApiUnavailable")
        assert "not JSON" in during["message"]
        kube.run("delete", "bvol", "before", "--wait=false")
        kube.apply(ssh_key("other-key"))  # SSH keys list fine meanwhile
        kube.wait_condition("bkey", "other-key", "Ready", "True")

        sim.admin("faults", {"malformed": {"list_volumes": "shape"}})
        wait_for(lambda: _get(f"http://127.0.0.1:{health}/readyz")[0] == 503, 30, what="/readyz 503")
        assert _get(f"http://127.0.0.1:{health}/healthz")[0] == 200  # alive: the poller runs
        _, text = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert (
            'barrack_inventory_errors_total{account="default",kind="volumes",reason="MalformedReply"}' in text
        )
        ages = {
            kind: float(
                re.search(
                    rf'^barrack_inventory_age_seconds{{account="default",kind="{kind}"}} (\S+)$', text, re.M
                )[1]
            )  # type: ignore[index]
            for kind in ("volumes", "ssh_keys")
        }
        assert ages["volumes"] > ages["ssh_keys"], ages  # the age of the last *successful* listing
        time.sleep(3)
        assert not _created(sim, "during"), "a volume was created from a view Barrack did not confirm"
        assert kube.get("bvol", "before") is not None, "a finalizer was released blind"
        assert barrack_volume(sim, kept_id) is not None

        sim.admin("faults", {"malformed": {}})
        kube.wait_condition("bvol", "during", "Ready", "True", timeout=60)
        wait_for(lambda: kube.get("bvol", "before") is None, 60, what="the deleted volume's object to go")
        assert barrack_volume(sim, kept_id) is None
        wait_for(lambda: _get(f"http://127.0.0.1:{health}/readyz")[0] == 200, 30, what="/readyz 200 again")
        assert op.pid == pid and op.process is not None and op.process.poll() is None


def test_an_empty_api_key_file_reports_unauthorized_until_a_key_is_written(
    kube: Kube, sim: Sim, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    key_file = tmp_path / "empty-api-key"
    key_file.write_text("")
    with running_operator(kube, sim, key_file, tmp_path, OPERATOR_SETTINGS, request=request) as op:
        kube.apply(ssh_key())
        refused = kube.wait_condition("bkey", "ops-key", "Synced", "False", reason="Unauthorized")
        assert str(key_file) in refused["message"]
        assert str(key_file) in op.log()
        key_file.write_text(API_KEY)
        kube.wait_condition("bkey", "ops-key", "Ready", "True", timeout=60)
