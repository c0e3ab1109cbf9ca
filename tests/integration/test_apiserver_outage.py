"""The apiserver away for a minute, longer than kopf's own retries of one request
(1 + 1 + 2 + 3 + 5 + 8 + 13 + 21 = 54 s), which an apiserver restarting a few times within a
minute also spends: the operator's watches wait for it, and the process goes on untouched. A
module of its own so that the test command's workers can run it beside test_kube_faults.py."""

from __future__ import annotations

import time

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import Kube, Operator, Sim, ssh_key
from tests.integration.test_kube_faults import (
    assert_never_restarted,
    operator_settings,  # noqa: F401  (the fixture: one replica)
)

pytestmark = pytest.mark.integration

APISERVER_AWAY = 60.0


def test_the_apiserver_away_for_longer_than_kopfs_own_retries(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """The watches wait for the apiserver for as long as it is away (kopf alone gives up after
    54 s and stops, and its stop could hang: a process alive, reconciling nothing)."""
    pid = operator.pid
    kube.apply(ssh_key("before"))
    kube.wait_condition("barracksshkey", "before", "Ready", "True")
    kube.plane.stop_apiserver()
    time.sleep(APISERVER_AWAY)
    kube.plane.start_apiserver()
    kube.apply(ssh_key("after"))
    kube.wait_condition("barracksshkey", "after", "Ready", "True", timeout=90)
    kube.run("delete", "barracksshkey", "before", "--wait=false")
    wait_for(lambda: kube.get("barracksshkey", "before") is None, 60, what="the deleted key gone")
    assert_never_restarted(operator, pid)
    assert "escalating" not in operator.log()
