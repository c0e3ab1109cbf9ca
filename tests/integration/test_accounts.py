"""Issue 16's accounts against real processes: two Barrack accounts (two simulators, two keys),
objects that name an account use it and only it; the account's status shows its balance, burn
and runway; a namespace an account does not allow, or an account that does not exist, makes no
call; a key changed in its Secret is used without a restart; a bad key shows on the account and
on its objects; CreditsLow turns True with a Warning event."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from barrack_sim import money
from barrack_testkit.stack import SimProcess
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
TEAM_KEY = "team-b-key-5c1e9a"
WRONG_TEAM_KEY = "team-b-old-key-77aa"


@pytest.fixture
def operator_settings(kube: Kube) -> dict[str, str]:
    # The operator's own namespace (where account Secrets are read) is the test's namespace.
    return {**OPERATOR_SETTINGS, "LEADER_ELECTION_NAMESPACE": kube.namespace, "PRICES_INTERVAL": "1"}


@pytest.fixture
def team_sim(tmp_path: Path) -> Iterator[Sim]:
    """A second Barrack account: its own simulator, key and ids."""
    simulator = SimProcess.start(tmp_path / "team-b", TEAM_KEY, "--first-id", "800001")
    yield simulator
    simulator.stop()


@pytest.fixture
def accounts(kube: Kube) -> Iterator[list[str]]:
    """BarrackAccounts are cluster-scoped: every one a test makes goes afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        kube.plane.kubectl("delete", "barrackaccount", name, "--ignore-not-found")


def _secret(kube: Kube, name: str, key: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"api-key": base64.b64encode(key.encode()).decode()}}  # fmt: skip
    kube.run("apply", "-f", "-", input_text=json.dumps(body))


def _account(kube: Kube, accounts: list[str], name: str, sim: Sim, **spec: object) -> None:
    accounts.append(name)
    manifest = {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackAccount", "metadata": {"name": name},
                "spec": {"secretRef": {"name": f"{name}-key"}, "apiUrl": sim.api, **spec}}  # fmt: skip
    kube.plane.kubectl("apply", "-f", "-", input_text=json.dumps(manifest))


def _account_condition(kube: Kube, name: str, type_: str) -> dict[str, str] | None:
    out = kube.plane.kubectl("get", "barrackaccount", name, "-o", "json", check=False)
    status = json.loads(out.stdout).get("status") or {} if out.returncode == 0 else {}
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def _wait_account(
    kube: Kube, name: str, type_: str, status: str, reason: str | None = None
) -> dict[str, str]:
    def check() -> dict[str, str] | None:
        c = _account_condition(kube, name, type_)
        return c if c and c["status"] == status and (reason is None or c["reason"] == reason) else None

    return wait_for(check, 60, what=f"BarrackAccount {name} {type_}={status} {reason or ''}")  # type: ignore[no-any-return]


def test_objects_use_the_account_they_name_and_only_it(
    kube: Kube, sim: Sim, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    _secret(kube, "team-b-key", WRONG_TEAM_KEY)  # a key Barrack refuses, rotated below
    _account(kube, accounts, "team-b", team_sim, allowedNamespaces=[kube.namespace], creditsLowHours=1e9)
    kube.apply(volume("ours", sizeGB=1000, volumeType="NVMe", accountRef={"name": "team-b"}))
    kube.apply(volume("default-one"))
    # A refused key shows on the account and on its objects; nothing is created anywhere.
    _wait_account(kube, "team-b", "Ready", "False", "Unauthorized")
    refused = kube.wait_condition("bvol", "ours", "Synced", "False", reason="Unauthorized")
    # The fix names the account's Secret and its namespace, not the operator's key file.
    assert f"Secret {kube.namespace}/team-b-key" in refused["message"], refused["message"]
    assert "file" not in refused["message"] and "restart nothing" not in refused["message"]
    pid = operator.pid
    _secret(kube, "team-b-key", TEAM_KEY)  # rotation: the next call uses it, no restart
    kube.wait_condition("bvol", "ours", "Ready", "True", timeout=60)
    kube.wait_condition("bvol", "default-one", "Ready", "True", timeout=60)
    assert operator.pid == pid and operator.alive()
    ours = kube.get("bvol", "ours")["status"]["id"]  # type: ignore[index]
    theirs = kube.get("bvol", "default-one")["status"]["id"]  # type: ignore[index]
    assert {v["id"] for v in team_sim.inventory()["volumes"]} == {ours}
    assert {v["id"] for v in sim.inventory()["volumes"]} == {theirs}
    # The account's status: balance, burn at Barrack's prices, runway; CreditsLow (below 1e9 hours).
    _wait_account(kube, "team-b", "Ready", "True")
    low = _wait_account(kube, "team-b", "CreditsLow", "True", "CreditsLow")
    assert "top up" in low["message"]
    status = json.loads(kube.plane.kubectl("get", "bacct", "team-b", "-o", "json").stdout)["status"]
    burn = money.VOLUME_TB_HOURLY_USD["NVMe"]
    assert status["currency"] == "USD" and status["burnPerHour"] == pytest.approx(burn)
    assert status["runwayHours"] == pytest.approx(status["balance"] / burn, rel=0.01)
    columns = kube.plane.kubectl("get", "bacct", "team-b").stdout
    assert all(word in columns for word in ("BALANCE", "BURN/H", "RUNWAY"))
    events = kube.plane.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector",
                                "involvedObject.name=team-b,reason=CreditsLow")  # fmt: skip
    assert json.loads(events.stdout)["items"], "no CreditsLow event"


def test_an_account_not_allowed_or_missing_makes_no_call(
    kube: Kube, sim: Sim, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    _secret(kube, "team-c-key", TEAM_KEY)
    _account(kube, accounts, "team-c", team_sim, allowedNamespaces=["some-other-namespace"])
    kube.apply(volume("elsewhere", accountRef={"name": "team-c"}))
    kube.apply(volume("nowhere", accountRef={"name": "no-such-account"}))
    denied = kube.wait_condition("bvol", "elsewhere", "Synced", "False", reason="AccountNotAllowed")
    assert kube.namespace in denied["message"] and "allowedNamespaces" in denied["message"]
    missing = kube.wait_condition("bvol", "nowhere", "Synced", "False", reason="AccountNotFound")
    assert "no-such-account" in missing["message"]
    assert kube.condition("bvol", "elsewhere", "Stalled")["status"] == "True"  # type: ignore[index]
    assert team_sim.inventory()["volumes"] == [] and sim.inventory()["volumes"] == []
    # accountRef cannot change: the resource lives in its account.
    moved = kube.run("patch", "bvol", "nowhere", "--type=merge", "-p", '{"spec":{"accountRef":{"name":"team-c"}}}',
                     check=False)  # fmt: skip
    assert moved.returncode != 0 and "accountRef is immutable" in moved.stderr
    # Nothing was ever asked of Barrack for them: they go without a call (and without an account).
    kube.run("delete", "bvol", "elsewhere", "nowhere", "--timeout=60s")
    assert team_sim.inventory()["volumes"] == [] and sim.inventory()["volumes"] == []


def test_the_budget_refuses_before_any_call_until_it_rises(
    kube: Kube, sim: Sim, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    volume_hourly = money.VOLUME_TB_HOURLY_USD["NVMe"]  # 1000 GB
    instance_hourly = money.GPU_HOURLY_USD["A40"] * 2
    _secret(kube, "team-d-key", TEAM_KEY)
    _account(kube, accounts, "team-d", team_sim, maxHourlySpend=1.0)
    ref = {"accountRef": {"name": "team-d"}}
    key = {**ssh_key(), "spec": {**ssh_key()["spec"], **ref}}
    kube.apply(key)
    kube.apply(volume("data", sizeGB=1000, volumeType="NVMe", **ref))
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)
    kube.apply(instance("gpu", team_sim.image(), gpuCount=2, **ref))
    refused = kube.wait_condition("binst", "gpu", "Synced", "False", reason="BudgetExceeded", timeout=60)
    figures = (f"now {volume_hourly:.2f}", f"asks {instance_hourly:.2f}", "maxHourlySpend) is 1.00")
    assert all(f in refused["message"] for f in figures), refused["message"]
    assert team_sim.inventory()["instances"] == []
    assert not [k for k in team_sim.calls() if k.startswith("create_instance ")], "a create was sent"
    kube.plane.kubectl(
        "patch", "barrackaccount", "team-d", "--type=merge", "-p", '{"spec":{"maxHourlySpend":2.0}}'
    )
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    assert len(team_sim.inventory()["instances"]) == 1


def test_a_namespace_budget_refuses_before_any_call_and_the_account_lists_its_burn(
    kube: Kube, sim: Sim, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    volume_hourly = money.VOLUME_TB_HOURLY_USD["NVMe"]  # 1000 GB
    instance_hourly = money.GPU_HOURLY_USD["A40"]
    _secret(kube, "team-n-key", TEAM_KEY)
    budgets = [{"namespace": kube.namespace, "maxHourlySpend": round(volume_hourly + instance_hourly / 2, 4)}]
    _account(kube, accounts, "team-n", team_sim, maxHourlySpend=100.0, namespaceBudgets=budgets)
    ref = {"accountRef": {"name": "team-n"}}
    kube.apply({**ssh_key(), "spec": {**ssh_key()["spec"], **ref}})
    kube.apply(volume("data", sizeGB=1000, volumeType="NVMe", **ref))
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)
    kube.apply(instance("gpu", team_sim.image(), **ref))
    refused = kube.wait_condition("binst", "gpu", "Synced", "False", reason="BudgetExceeded", timeout=60)
    figures = (f"namespace {kube.namespace}'s burn", f"now {volume_hourly:.2f}", f"asks {instance_hourly:.2f}",
               "namespaceBudgets) is")  # fmt: skip
    assert all(f in refused["message"] for f in figures), refused["message"]
    assert not [k for k in team_sim.calls() if k.startswith("create_instance ")], "a create was sent"

    def listed() -> list[dict[str, object]] | None:
        status = kube.plane.kubectl("get", "bacct", "team-n", "-o", "json").stdout or "{}"
        rows = json.loads(status).get("status", {}).get("namespaces") or []
        return rows if rows and rows[0].get("burnPerHour") == pytest.approx(volume_hourly) else None

    rows = wait_for(listed, 60, what="the account's list of namespace burns")
    assert (
        rows[0]["namespace"] == kube.namespace and rows[0]["maxHourlySpend"] == budgets[0]["maxHourlySpend"]
    )
    raised = [{"namespace": kube.namespace, "maxHourlySpend": volume_hourly + instance_hourly + 0.01}]
    kube.plane.kubectl("patch", "barrackaccount", "team-n", "--type=merge", "-p",
                       json.dumps({"spec": {"namespaceBudgets": raised}}))  # fmt: skip
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)


def test_a_failed_price_refresh_keeps_the_last_prices_and_says_so(
    kube: Kube, sim: Sim, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    _secret(kube, "team-e-key", TEAM_KEY)
    _account(kube, accounts, "team-e", team_sim)
    kube.apply(volume("data", sizeGB=1000, volumeType="HDD", accountRef={"name": "team-e"}))
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)
    hourly = money.VOLUME_TB_HOURLY_USD["HDD"]
    wait_for(lambda: (kube.get("bvol", "data")["status"].get("cost") or {}).get("hourly") == pytest.approx(hourly),  # type: ignore[index]
             30, what="the volume's cost")  # fmt: skip
    team_sim.admin("faults", {"malformed": {"get_pricing": "shape"}})
    note = wait_for(
        lambda: (
            (c := _account_condition(kube, "team-e", "Ready"))
            and "last prices are kept" in c["message"]
            and c
        ),
        60,
        what="the account to say its prices could not be refreshed",
    )
    assert note["status"] == "True"
    kube.run("annotate", "bvol", "data", "barrack.ai/reconcile-requested-at=now", "--overwrite")
    wait_for(
        lambda: ((kube.get("bvol", "data") or {}).get("status") or {}).get("lastHandledReconcileAt") == "now",
        30,
        what="the pass asked for to be handled",
    )
    assert kube.get("bvol", "data")["status"]["cost"]["hourly"] == pytest.approx(hourly)  # type: ignore[index]
    team_sim.admin("faults", {"malformed": {}})
    wait_for(lambda: "last prices" not in (_account_condition(kube, "team-e", "Ready") or {"message": "last prices"})["message"],
             60, what="the note to go once prices refresh again")  # fmt: skip


def test_an_accounts_own_rate_limit_paces_its_calls(
    kube: Kube, team_sim: Sim, operator: Operator, accounts: list[str]
) -> None:
    """BarrackAccount.spec.rateLimit is that account's alone: Barrack sees at most
    floor(requestsPerSecond + burst) of its calls in any second, however many objects wait."""
    _secret(kube, "team-r-key", TEAM_KEY)
    _account(kube, accounts, "team-r", team_sim, allowedNamespaces=[kube.namespace],
             rateLimit={"requestsPerSecond": 2, "burst": 1})  # fmt: skip
    ref = {"accountRef": {"name": "team-r"}}
    kube.apply(yaml.safe_dump_all([volume(f"paced-{n}", **ref) for n in range(12)]))
    for n in range(12):
        kube.wait_condition("bvol", f"paced-{n}", "Ready", "True", timeout=120)
    rate = team_sim.admin("rate")
    assert rate["requests"] >= 12 and rate["max_per_second"] <= 3, rate
