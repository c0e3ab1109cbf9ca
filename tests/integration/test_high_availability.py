"""Two operator processes against one apiserver: only the holder of the Lease reconciles; a standby
takes over a SIGKILLed leader's work without creating anything twice; a leader cut off from the
apiserver stops mutating (and exits) before the standby takes the Lease. Short lease timings keep
the tests quick; the chart's defaults are 15 s, 10 s and 2 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from kubernetes.config import kube_config

from barrack_operator.kube import StatusWriter
from barrack_operator.leadership import LeaderElector, LeaseSettings
from barrack_testkit.kubeproxy import KubeFaultProxy
from barrack_testkit.stack import OperatorProcess, operator_env
from tests.integration.conftest import OPERATOR_SETTINGS, Kube, Sim, assert_no_secret, volume, wait_for

pytestmark = pytest.mark.integration
LEASE = {"LEASE_DURATION": "4", "RENEW_DEADLINE": "3", "RETRY_PERIOD": "0.5"}


def _operator(
    kube: Kube,
    sim: Sim,
    key: Path,
    log_dir: Path,
    pod: str,
    kubeconfig: Path | None = None,
    **overrides: str,
) -> OperatorProcess:
    settings = {**OPERATOR_SETTINGS, **LEASE, "LEADER_ELECTION_NAMESPACE": kube.namespace, **overrides}
    env = operator_env(kubeconfig or kube.plane.kubeconfig, sim.api, key, **settings)
    env["POD_NAME"] = pod
    args = [f"--namespace={kube.namespace}", "--liveness-port", "0", "--metrics-port", "0"]
    return OperatorProcess(log_dir / f"{pod}.log", env, args)


def _without_id(kube: Kube, prefix: str) -> list[str]:
    listed = json.loads(kube.run("get", "bvol", "-o", "json").stdout)["items"]
    return [o["metadata"]["name"] for o in listed if o["metadata"]["name"].startswith(prefix)
            and not (o.get("status") or {}).get("id")]  # fmt: skip


def _holder(kube: Kube) -> str | None:
    return _holder_of(kube, "barrack-operator")


def _logged_at(log: str, text: str) -> datetime:
    line = next(line for line in log.splitlines() if text in line)
    return datetime.fromisoformat(line.split(" ", 1)[0])  # RFC 3339, UTC, milliseconds


@contextlib.contextmanager
def _leader_and_standby(
    kube: Kube, sim: Sim, key: Path, log_dir: Path, **overrides: str
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """operator-a leading and operator-b waiting for the Lease; both stopped afterwards, and
    neither log may hold the API key."""
    a = _operator(kube, sim, key, log_dir, "operator-a", **overrides)
    b = _operator(kube, sim, key, log_dir, "operator-b", **overrides)
    try:
        a.start()
        wait_for(lambda: _holder(kube) == "operator-a", 30, what="operator-a to lead")
        b.start()
        wait_for(lambda: "Waiting to lead" in b.log(), 30, what="operator-b to wait for the Lease")
        yield a, b
    finally:
        a.stop()
        b.stop()
        for op in (a, b):
            assert_no_secret(op.log(), f"{op.log_path.name}")


def _created_once(sim: Sim, prefix: str, count: int) -> None:
    created = Counter(c["name"] for c in sim.admin("created") if c["name"].startswith(prefix))
    assert len(created) == count and max(created.values()) == 1, created


def test_a_standby_finishes_a_killed_leaders_work_without_duplicates(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path
) -> None:
    # Four calls a second: the twenty creates take five seconds, so the kill comes with creates
    # made, some on their way and some not yet sent, which only the standby can make.
    with _leader_and_standby(kube, sim, api_key_file, tmp_path, REQUESTS_PER_SECOND="4", BURST="1") as (a, b):
        time.sleep(2)  # a standby stays one: it calls nothing
        assert "Leading" not in b.log() and _holder(kube) == "operator-a"
        sim.admin("faults", {"route_latency": {"create_volume": 0.3}})
        kube.apply(yaml.safe_dump_all([volume(f"ha-{n}") for n in range(20)]))

        def mid_work() -> bool:  # creates made, and objects still without an id: work under way
            made = [c for c in sim.admin("created") if c["name"].startswith("ha-")]
            return 0 < len(made) < 10 and bool(_without_id(kube, "ha-"))

        wait_for(mid_work, 30, interval=0.1, what="creates under way")
        a.kill()
        killed = time.monotonic()
        wait_for(lambda: _holder(kube) == "operator-b", 30, interval=0.1, what="operator-b to take over")
        takeover = time.monotonic() - killed
        print(f"takeover after SIGKILL of the leader: {takeover:.1f}s (lease 4 s, retry 0.5 s)")
        for n in range(20):
            kube.wait_condition("bvol", f"ha-{n}", "Ready", "True", timeout=90)
        _created_once(sim, "ha-", 20)
        events = json.loads(kube.run("get", "events", "-o", "json").stdout)["items"]
        by_standby = {e["involvedObject"]["name"] for e in events
                      if e["reason"] == "Created" and e.get("reportingInstance") == "operator-b"}  # fmt: skip
        assert by_standby, "the standby created nothing: the kill came after the leader's work was done"


def test_a_clean_stop_hands_the_lease_over_at_once_and_logs_no_error(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path
) -> None:
    """SIGTERM while creates are on their way: the leader makes no call more, lets the replies of
    those sent come in, and hands the Lease over before kopf's own stop (5 s): the standby leads
    well within the lease duration (4 s), which an expiry would take. Nothing is created twice,
    and the stopped leader's log holds no ERROR."""
    with _leader_and_standby(kube, sim, api_key_file, tmp_path) as (a, _):
        sim.admin("faults", {"route_latency": {"create_volume": 0.3}})
        kube.apply(yaml.safe_dump_all([volume(f"calm-{n}") for n in range(10)]))
        wait_for(lambda: any(c["name"].startswith("calm-") for c in sim.admin("created")), 30, what="creates")
        stopped = time.monotonic()
        a.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        wait_for(lambda: _holder(kube) == "operator-b", 30, interval=0.1, what="operator-b to take over")
        takeover = time.monotonic() - stopped
        print(f"takeover after SIGTERM of the leader: {takeover:.1f}s (lease 4 s, retry 0.5 s)")
        assert takeover < 4.0, f"the Lease expired instead of being handed over ({takeover:.1f} s)"
        wait_for(lambda: not a.alive(), 40, what="operator-a to exit")
        for n in range(10):
            kube.wait_condition("bvol", f"calm-{n}", "Ready", "True", timeout=90)
        _created_once(sim, "calm-", 10)
        errors = [line for line in a.log().splitlines() if " ERROR " in line]
        assert errors == [], "a clean stop logged errors:\n" + "\n".join(errors)
        assert "the Lease is handed over" in a.log()


def test_a_leader_cut_off_from_the_apiserver_stops_before_the_standby_takes_over(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path
) -> None:
    with KubeFaultProxy(kube.plane) as proxy:
        a = _operator(
            kube, sim, api_key_file, tmp_path, "operator-a", proxy.write_kubeconfig(tmp_path / "a-kc")
        )
        b = _operator(kube, sim, api_key_file, tmp_path, "operator-b")
        try:
            a.start()
            wait_for(lambda: _holder(kube) == "operator-a", 30, what="operator-a to lead")
            b.start()
            kube.apply(volume("before"))
            kube.wait_condition("bvol", "before", "Ready", "True")
            proxy.partition()
            wait_for(lambda: _holder(kube) == "operator-b", 30, interval=0.1, what="operator-b to take over")
            wait_for(
                lambda: a.process is not None and a.process.poll() is not None, 30, what="operator-a to exit"
            )
            lost = _logged_at(a.log(), "Lost the Lease")
            leading = _logged_at(b.log(), "Leading: Lease")
            print(
                f"the cut-off leader stopped {(leading - lost).total_seconds():.1f}s before the standby led"
            )
            assert lost < leading, (lost, leading)
            kube.apply(volume("after"))  # the new leader works
            kube.wait_condition("bvol", "after", "Ready", "True", timeout=60)
        finally:
            a.stop()
            b.stop()
            for op in (a, b):
                assert_no_secret(op.log(), f"{op.log_path.name}")


def test_the_lease_is_renewed_while_every_status_write_slot_is_busy(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst of status writes holds all of the writer's slots for seconds; a renewal queued behind
    # them missed its deadline and the leader fenced itself mid-burst (found with the mixed bench).
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube.plane.kubeconfig))
    lost: list[bool] = []

    async def scenario() -> None:
        writer = StatusWriter(concurrency=2)
        try:
            for _ in range(2):
                await writer._slots.acquire()  # every write slot busy for the whole test
            lease = LeaseSettings(
                namespace=kube.namespace, identity="busy", name="busy-writer", **_seconds(LEASE)
            )
            elector = LeaderElector(writer.lease, lease, on_lost=lambda: lost.append(True))
            await asyncio.wait_for(elector.acquire(), 10)
            keeper = asyncio.create_task(elector.keep())
            await asyncio.sleep(2 * lease.renew_deadline)
            assert elector.valid() and not lost
            with pytest.raises(TimeoutError):  # the writer's own requests do wait their turn
                await asyncio.wait_for(writer.request_json("GET", elector.path), 1.0)
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        finally:
            await writer.aclose()

    asyncio.run(scenario())
    assert _holder_of(kube, "busy-writer") == "busy"


def _seconds(settings: dict[str, str]) -> dict[str, float]:
    names = {
        "LEASE_DURATION": "lease_duration",
        "RENEW_DEADLINE": "renew_deadline",
        "RETRY_PERIOD": "retry_period",
    }
    return {names[key]: float(value) for key, value in settings.items()}


def _holder_of(kube: Kube, name: str) -> str | None:
    result = kube.run("get", "lease", name, "-o", "json", check=False)
    return json.loads(result.stdout)["spec"].get("holderIdentity") if result.returncode == 0 else None
