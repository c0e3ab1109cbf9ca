"""Suites 1 and 2 of the reliability work: the operator SIGKILLed at random moments, and Barrack
failing in every way the simulator can, while a seeded random workload of objects is created,
attached, detached, resized and deleted. Each round must converge, and Barrack must hold exactly
one resource per object, nothing unowned but retained volumes, and every wanted volume.

``hack/soak.py`` runs the same rounds (:mod:`barrack_testkit.chaos`) many more times.
"""

from __future__ import annotations

import pytest

from barrack_testkit.chaos import Chaos, Faults
from tests.integration.conftest import OPERATOR_SETTINGS, SSH_PUBLIC_KEY, Kube, Operator, Sim
from tests.integration.scenarios import assert_clean

pytestmark = pytest.mark.integration

KILL_ROUNDS = 8
FAULT_ROUNDS = 8
RATE, BURST = 8, 2
FAULTS = Faults(
    error_rate=0.15, commit_then_fail_rate=0.25, latency_seconds=0.05, throttle_share=0.5, throttle_rps=3
)


def test_sigkill_at_random_moments_loses_nothing(kube: Kube, sim: Sim, operator: Operator) -> None:
    chaos = Chaos(kube.plane, kube.namespace, sim, operator, seed=11)
    tally = chaos.run(rounds=KILL_ROUNDS)
    assert_clean(tally)
    assert tally.kills >= KILL_ROUNDS


# The operator at a known, low rate limit, so that its peak request rate can be held to it.
@pytest.mark.parametrize(
    "operator_settings",
    [{**OPERATOR_SETTINGS, "REQUESTS_PER_SECOND": str(RATE), "BURST": str(BURST)}],
    ids=[f"rate-{RATE}-burst-{BURST}"],
)
def test_barrack_faults_converge_without_duplicates_or_leaks(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    chaos = Chaos(
        kube.plane, kube.namespace, sim, operator, seed=5, kills=False, faults=FAULTS, changes_per_round=4
    )
    tally = chaos.run(rounds=FAULT_ROUNDS)
    assert_clean(tally)
    injected = sim.admin("faults")["injected"]
    assert injected["500"] > 0 and injected["commit_then_500"] > 0 and injected["429"] > 0, injected
    # Never faster than the operator's own limit, whatever Barrack answers.
    peak = sim.admin("rate")["max_per_second"]
    print(f"injected {injected}, peak {peak}/s, throttled {chaos.throttled_seconds:.1f}s")
    assert peak <= RATE + BURST, f"{peak} requests in one second; the limit allows {RATE + BURST}"
    # After a 429 every caller waits as Barrack says (Retry-After, at least 1 s): a few 429s per
    # second of throttling; an operator that retried at its own rate would get RATE - throttle_rps.
    assert chaos.throttled_seconds > 0
    assert injected["429"] <= 2 * chaos.throttled_seconds, (injected, chaos.throttled_seconds)


def test_the_audit_counts_what_goes_wrong_behind_the_operators_back(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """The checks above can fail: a volume deleted on Barrack behind the operator's back is a lost
    volume (the operator waits, NotFound, rather than make an empty one), an SSH key made on
    Barrack directly is owned by no object, and the new volume asked for with barrack.ai/recreate
    is a second creation under the name."""
    chaos = Chaos(kube.plane, kube.namespace, sim, operator, seed=1, kills=False)
    chaos.start()
    name = chaos.workload.add_volume()
    chaos.converge("a volume")
    volume_id = kube.get("bvol", name)["status"]["id"]  # type: ignore[index]
    assert chaos.tally.clean
    sim.call("DELETE", f"/volumes/{volume_id}/")
    sim.call("POST", "/ssh-keys/", {"name": "stray", "public_key": SSH_PUBLIC_KEY})
    kube.wait_condition("bvol", name, "Ready", "False", reason="NotFound")
    chaos.converge_timeout = 2.0
    chaos.converge("after the deletion on Barrack")
    tally = chaos.tally
    assert (tally.lost_volumes, tally.duplicates, tally.leaks) == (1, 0, 1), tally.problems
    assert any(f"volume {name} ({volume_id}) is gone from Barrack while wanted" in p for p in tally.problems)
    assert any("NotFound" in p for p in tally.problems) and tally.unconverged >= 1
    kube.run("annotate", "bvol", name, "barrack.ai/recreate=true")
    chaos.converge_timeout = 60.0
    chaos.converge("after asking for a new volume")
    assert (tally.lost_volumes, tally.duplicates) == (1, 1), tally.problems  # the loss is counted once
    assert kube.get("bvol", name)["status"]["id"] not in (None, volume_id)  # type: ignore[index]
