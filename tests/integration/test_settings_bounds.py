"""Issue 19: every bad setting is refused before it can crash the operator. The chart's values
schema (and, between values, its template) refuses each value the operator would refuse, as a
number (``--set``) and as a string (``--set-string``), naming the value; the operator refuses the
same values at start with exit code 2 and one line naming the variable. The pairs of value and
variable are read from the chart's Deployment template, so a new setting is covered at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from typing import Any

import pytest

from barrack_operator.settings import Settings
from tests.integration.test_chart import CHART, helm

TEMPLATE = (CHART / "templates" / "deployment.yaml").read_text()
VALUE_OF_ENV: dict[str, str] = dict(
    re.findall(r"- name: (BARRACK_[A-Z_]+)\n\s+value: \{\{ \.Values\.([A-Za-z.]+) \| quote \}\}", TEMPLATE)
)
FIELD_OF_ENV = {f.metadata["env"]: f for f in fields(Settings)}


def bad_values(bounds: dict[str, Any]) -> list[str]:
    """Values just outside each bound, and a word where a number belongs."""
    out = []
    if "gt" in bounds:
        out.append(f"{bounds['gt']:g}")
    if "ge" in bounds:
        out.append(f"{bounds['ge'] - 1:g}")
    if "lt" in bounds:
        out.append(f"{bounds['lt']:g}")
    if "le" in bounds:
        out.append(f"{bounds['le'] + 1:g}")
    if out:
        out.append("fast")
    if "choices" in bounds:
        out.append("loud")
    return out


CASES = [
    (env, VALUE_OF_ENV[env], value)
    for env, f in FIELD_OF_ENV.items()
    if env in VALUE_OF_ENV
    for value in bad_values(dict(f.metadata))
]


def test_the_chart_sets_every_bounded_setting() -> None:
    bounded = {env for env, f in FIELD_OF_ENV.items() if bad_values(dict(f.metadata))}
    chart_sets = set(VALUE_OF_ENV)
    assert bounded - {"BARRACK_LIVENESS_PORT", "BARRACK_METRICS_PORT"} <= chart_sets
    assert len(CASES) >= 40, CASES


@pytest.mark.parametrize(("env", "path", "value"), CASES, ids=[f"{p}={v}" for _, p, v in CASES])
def test_a_bad_value_is_refused_by_the_chart_and_the_operator(env: str, path: str, value: str) -> None:
    pointer = "/" + path.replace(".", "/")
    for how in ("--set", "--set-string"):
        result = helm(
            "template", "x", str(CHART), "--set", "apiKey.value=k", how, f"{path}={value}", check=False
        )
        assert result.returncode != 0, f"helm took {how} {path}={value}"
        assert pointer in result.stderr or path in result.stderr, result.stderr
    run = subprocess.run(
        [sys.executable, "-m", "barrack_operator.cli", "run"],
        env={**os.environ, env: value, "KUBECONFIG": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and env in lines[0], run.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["leaderElection.renewDeadline=15"],
            "leaderElection.renewDeadline must be below leaderElection.leaseDuration",
        ),
        (
            ["leaderElection.retryPeriod=10"],
            "leaderElection.retryPeriod must be below leaderElection.renewDeadline",
        ),
        (["polling.idleInterval=1"], "polling.idleInterval must be at least polling.interval"),
        (["polling.maxBackoff=5"], "polling.maxBackoff must be at least polling.blockedRequeue"),
    ],
)
def test_values_bound_by_each_other_are_refused(values: list[str], message: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", "x", str(CHART), "--set", "apiKey.value=k", *sets, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_values_at_the_edge_of_their_bounds_are_taken() -> None:
    good = ["rateLimit.requestsPerSecond=999.5", "polling.maxBackoff=9999.5", "polling.interval=0.25",
            "rateLimit.burst=1000", "polling.staleAfterFailedPolls=1", "leaderElection.retryPeriod=0.5"]  # fmt: skip
    sets = [arg for value in good for arg in ("--set", value)]
    helm("template", "x", str(CHART), "--set", "apiKey.value=k", *sets)
    env = {
        "BARRACK_REQUESTS_PER_SECOND": "999.5",
        "BARRACK_MAX_BACKOFF": "9999.5",
        "BARRACK_POLL_INTERVAL": "0.25",
    }
    assert Settings.from_env(env).requests_per_second == 999.5
