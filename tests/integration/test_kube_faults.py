"""Suite 3 of the reliability work: Kubernetes failing under the operator. Status writes answered
409 Conflict, every watch stream cut, the apiserver stopped and started again (etcd keeps the
data). The operator must resume by itself (it is never restarted) and lose no object, while the
seeded workload of :mod:`barrack_testkit.chaos` keeps changing."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from barrack_testkit.chaos import Chaos
from barrack_testkit.kubeproxy import KubeFaultProxy
from tests.integration.conftest import OPERATOR_SETTINGS, Kube, Operator, Sim, running_operator
from tests.integration.scenarios import assert_clean

pytestmark = pytest.mark.integration

ROUNDS = 6
RESTART_ROUNDS = 4
"""Each apiserver restart costs about 25 s (start-up and convergence); four keep the test command
under its 12-minute bound."""


@pytest.fixture
def proxy(kube: Kube) -> Iterator[KubeFaultProxy]:
    with KubeFaultProxy(kube.plane, conflict_rate=0.3, seed=2) as running:
        yield running


@pytest.fixture
def proxied_operator(
    kube: Kube,
    sim: Sim,
    proxy: KubeFaultProxy,
    api_key_file: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Operator]:
    """The operator talking to the apiserver through the fault proxy."""
    kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig")
    with running_operator(
        kube, sim, api_key_file, tmp_path, OPERATOR_SETTINGS, kubeconfig=kubeconfig, request=request
    ) as op:
        yield op


def assert_never_restarted(operator: Operator, pid: int) -> None:
    assert operator.process is not None and operator.process.poll() is None, "the operator exited"
    assert operator.pid == pid


def test_status_conflicts_and_cut_watches(
    kube: Kube, sim: Sim, proxy: KubeFaultProxy, proxied_operator: Operator
) -> None:
    pid = proxied_operator.pid

    def cut_watches(rng: random.Random) -> str:
        time.sleep(rng.uniform(0.0, 2.0))
        return f"cut {proxy.cut_watches()} watches"

    chaos = Chaos(
        kube.plane, kube.namespace, sim, proxied_operator, seed=23, kills=False, disrupt=cut_watches
    )
    assert_clean(chaos.run(rounds=ROUNDS))
    print(dict(proxy.injected))
    assert proxy.injected["status_conflicts"] > 0 and proxy.injected["watches_cut"] >= ROUNDS
    assert "failed: 409, message=" in proxied_operator.log()  # the conflicts reached the operator
    assert_never_restarted(proxied_operator, pid)


@pytest.fixture
def operator_settings() -> dict[str, str]:
    """Without leader election (one replica): a leader that cannot renew its Lease for the renew
    deadline stops by design (tests/integration/test_high_availability.py proves it), and an
    apiserver restart here lasts longer than that; what this suite proves is that the process itself
    survives the apiserver going away and coming back."""
    return {**OPERATOR_SETTINGS, "LEADER_ELECTION": "false"}


def test_apiserver_restarts_mid_run(kube: Kube, sim: Sim, operator: Operator) -> None:
    pid = operator.pid

    def restart_apiserver(rng: random.Random) -> str:
        time.sleep(rng.uniform(0.0, 2.0))
        kube.plane.stop_apiserver()
        down = rng.uniform(1.0, 6.0)
        time.sleep(down)
        kube.plane.start_apiserver()
        return f"apiserver down {down:.1f}s"

    chaos = Chaos(kube.plane, kube.namespace, sim, operator, seed=29, kills=False, disrupt=restart_apiserver)
    assert_clean(chaos.run(rounds=RESTART_ROUNDS))
    assert_never_restarted(operator, pid)
