"""The Helm chart and the plain manifests, against the real apiserver: lint, render with default and
other values, server-side dry runs, an install, the schema's refusals, drift against crds/, and
the RBAC proof: the operator run as the chart's ServiceAccount passes the volume scenario."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from barrack_operator.devcluster import ControlPlane
from barrack_operator.devcluster.binaries import KUBERNETES_VERSION, find_binary
from barrack_operator.resources.kinds import ALL_KINDS
from tests.integration.conftest import OPERATOR_SETTINGS, ROOT, Kube, Sim, running_operator
from tests.integration.scenarios import create_attach_blocked_detach_delete

pytestmark = pytest.mark.integration
CHART = ROOT / "charts" / "barrack-operator"
# The least the operator needs. A rule added to the chart, or a verb, fails this table on purpose.
CLUSTER_WIDE = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "resourceNames": [kind.crd_name for kind in ALL_KINDS],
        "verbs": ["get"],
    },
    {"apiGroups": ["barrack.ai"], "resources": ["barrackaccounts"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["barrack.ai"], "resources": ["barrackaccounts/status"], "verbs": ["patch"]},
]  # fmt: skip
OWN_NAMESPACE = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
NAMESPACED = [kind.plural for kind in ALL_KINDS if kind.scope == "Namespaced"]
LEAST_PRIVILEGE = [
    {"apiGroups": ["barrack.ai"], "resources": NAMESPACED, "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["barrack.ai"], "resources": [f"{p}/status" for p in NAMESPACED], "verbs": ["patch"]},
    {
        "apiGroups": ["barrack.ai"],
        "resources": ["barracksnapshots"],
        "verbs": ["create", "delete"],
    },  # schedules
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch"]},  # connection Secrets
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},  # startup scripts' contentFrom
]


def monitoring_crd(kind: str) -> dict[str, Any]:
    """One of the Prometheus operator's CRDs, reduced to what a dry run of ours needs."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


SERVICE_MONITOR_CRD = monitoring_crd("ServiceMonitor")
PROMETHEUS_RULE_CRD = monitoring_crd("PrometheusRule")
ALERTS = {
    "BarrackInventoryStale",
    "BarrackApiErrors",
    "BarrackRateLimited",
    "BarrackObjectsNotReady",
    "BarrackInventoryErrors",
    "BarrackCreditsLow",
    "BarrackMonthProjectedOverBudget",
}


def helm(
    *args: str, plane: ControlPlane | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    kubeconfig = [f"--kubeconfig={plane.kubeconfig}"] if plane else []
    return subprocess.run(
        [str(find_binary("helm")), *args, *kubeconfig],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def render(namespace: str, *values: str) -> list[dict[str, Any]]:
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm(
        "template", "barrack", str(CHART), "-n", namespace, "--kube-version", KUBERNETES_VERSION, *sets
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def dry_run(kube: Kube, docs: list[dict[str, Any]]) -> str:
    text = yaml.safe_dump_all(docs)
    result = kube.plane.kubectl("apply", "--dry-run=server", "-f", "-", input_text=text, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def test_chart_crds_are_the_repository_crds() -> None:
    ours = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    charted = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert charted == ours, "charts/barrack-operator/crds differs from crds/: run `make crds`"


def test_deploy_is_rendered_from_the_chart() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "render-deploy.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_lint_strict() -> None:
    for values in ([], ["--set", "apiKey.existingSecret=barrack-api-key", "--set", "watchNamespaces={a,b}"]):
        result = helm("lint", "--strict", str(CHART), *values, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_default_render_is_hardened_and_applies(kube: Kube) -> None:
    docs = render(kube.namespace, "apiKey.value=not-a-real-key")
    deployment = by_kind(docs, "Deployment")[0]
    spec = deployment["spec"]
    # Two replicas that take the Lease in turn; a rollout starts the new pod before the old one goes.
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert by_kind(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # every kind listed lately
    # The key is a mounted file; no env value carries it or references the Secret.
    env = {e["name"]: e for e in container["env"]}
    assert env["BARRACK_API_KEY_FILE"]["value"].startswith("/etc/barrack/")
    sourced = {e["name"]: e["valueFrom"] for e in container["env"] if "valueFrom" in e}
    assert sourced == {  # only the pod's own name and namespace, for the Lease
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "POD_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }
    assert "not-a-real-key" not in yaml.safe_dump(deployment)
    assert env["BARRACK_ALL_NAMESPACES"]["value"] == "true"
    cluster_roles = {r["metadata"]["name"]: r["rules"] for r in by_kind(docs, "ClusterRole")}
    assert cluster_roles == {
        "barrack-barrack-operator": LEAST_PRIVILEGE,
        "barrack-barrack-operator-cluster": CLUSTER_WIDE,
    }
    assert by_kind(docs, "Service")[0]["spec"]["ports"][0]["name"] == "metrics"
    out = dry_run(kube, docs)
    assert "deployment.apps/barrack-barrack-operator created (server dry run)" in out


def test_other_values_render_namespaced_roles_and_apply(kube: Kube) -> None:
    for ns in ("team-a", "team-b"):
        kube.plane.kubectl("create", "namespace", f"{kube.namespace}-{ns}"[:63], check=False)
    kube.plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(SERVICE_MONITOR_CRD))
    kube.plane.kubectl("wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com")
    watched = [f"{kube.namespace}-{ns}"[:63] for ns in ("team-a", "team-b")]
    docs = render(
        kube.namespace,
        "apiKey.existingSecret=my-barrack-key",
        "apiKey.secretKey=token",
        f"watchNamespaces={{{','.join(watched)}}}",
        "metrics.serviceMonitor.enabled=true",
        "metrics.service.type=NodePort",
        "logging.level=debug",
        "logging.format=plain",
        "rateLimit.requestsPerSecond=2.5",
        "polling.idleInterval=45",
        "resources.limits.memory=512Mi",
        "serviceAccount.name=barrack-sa",
    )
    assert not by_kind(docs, "Secret")
    # Cluster-wide: only reading the operator's own CRDs by name (to tell an uninstall from a deletion).
    assert [r["rules"] for r in by_kind(docs, "ClusterRole")] == [CLUSTER_WIDE]
    lease_roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    own = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-own-namespace")]
    assert [(r["metadata"]["namespace"], r["rules"]) for r in own] == [(kube.namespace, OWN_NAMESPACE)]
    events = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-account-events")]
    assert [(r["metadata"]["namespace"], r["rules"]) for r in events] == [  # cluster-scoped objects' events
        ("default", [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}])
    ]
    roles = [r for r in by_kind(docs, "Role") if r not in lease_roles + own + events]
    assert [r["metadata"]["namespace"] for r in lease_roles] == [kube.namespace]  # the operator's own
    assert {"coordination.k8s.io"} == {g for rule in lease_roles[0]["rules"] for g in rule["apiGroups"]}
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    assert all(r["rules"] == LEAST_PRIVILEGE for r in roles)
    container = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BARRACK_NAMESPACES"] == ",".join(watched) and "BARRACK_ALL_NAMESPACES" not in env
    assert env["BARRACK_API_KEY_FILE"] == "/etc/barrack/token"
    assert by_kind(docs, "ServiceMonitor")
    dry_run(kube, docs)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("rateLimit.burst=0", "/rateLimit/burst"),
        ("logging.level=verbose", "/logging/level"),
        ("apiUrl=not a url", "/apiUrl"),
        ("metrics.port=70000", "/metrics/port"),
        ("watchNamespaces={Bad_Name}", "/watchNamespaces/0"),
        ("replicaCount=0", "/replicaCount"),
        ("leaderElection.retryPeriod=0", "/leaderElection/retryPeriod"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ],
)
def test_schema_refuses_a_wrong_value_naming_it(value: str, field: str) -> None:
    result = helm(
        "template",
        "x",
        str(CHART),
        "--kube-version",
        KUBERNETES_VERSION,
        "--set",
        "apiKey.value=k",
        "--set",
        value,
        check=False,
    )
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def test_more_than_one_replica_without_leader_election_is_refused() -> None:
    result = helm(
        "template", "x", str(CHART), "--kube-version", KUBERNETES_VERSION, "--set", "apiKey.value=k",
        "--set", "leaderElection.enabled=false", check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "replicaCount > 1 needs leaderElection.enabled" in result.stderr
    single = helm(
        "template", "x", str(CHART), "--kube-version", KUBERNETES_VERSION, "--set", "apiKey.value=k",
        "--set", "leaderElection.enabled=false", "--set", "replicaCount=1",
    )  # fmt: skip
    assert "type: Recreate" in single.stdout and "PodDisruptionBudget" not in single.stdout


def test_missing_api_key_is_refused_with_the_fix() -> None:
    result = helm("template", "x", str(CHART), "--kube-version", KUBERNETES_VERSION, check=False)
    assert result.returncode != 0 and "apiKey.existingSecret" in result.stderr


def test_helm_install_and_uninstall(kube: Kube) -> None:
    release = f"b{abs(hash(kube.namespace)) % 10**6}"
    installed = helm(
        "install",
        release,
        str(CHART),
        "-n",
        kube.namespace,
        "--set",
        "apiKey.value=install-test-key",
        "--set",
        f"watchNamespaces={{{kube.namespace}}}",
        plane=kube.plane,
    )
    assert "STATUS: deployed" in installed.stdout
    assert "kubectl get barrack" in installed.stdout  # NOTES.txt
    assert kube.run("get", "deployment", f"{release}-barrack-operator").returncode == 0
    assert kube.run("get", "role", f"{release}-barrack-operator").returncode == 0
    helm("uninstall", release, "-n", kube.namespace, plane=kube.plane)
    assert kube.run("get", "deployment", f"{release}-barrack-operator", check=False).returncode != 0


def test_plain_manifests_apply(control_plane: ControlPlane) -> None:
    try:
        result = control_plane.kubectl("apply", "-f", str(ROOT / "deploy"))
    finally:  # the account default is cluster-wide: the next test's operator must not find it
        control_plane.kubectl("delete", "barrackaccount", "default", "--ignore-not-found")
    assert "deployment.apps/barrack-operator" in result.stdout
    assert "barrackaccount.barrack.ai/default created" in result.stdout
    samples = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", "default", "-f", str(ROOT / "deploy" / "samples")
    )
    for kind in (
        "barracksshkey",
        "barrackinstance",
        "barrackvolume",
        "barrackfirewall",
        "barracksnapshot",
        "barrackimage",
        "barracksnapshotschedule",
    ):
        assert f"{kind}.barrack.ai/" in samples.stdout


@pytest.fixture
def service_account_kubeconfig(kube: Kube, tmp_path: Path) -> Iterator[Path]:
    """The chart's ServiceAccount and namespaced RBAC, and a kubeconfig with that account's token."""
    docs = render(kube.namespace, "apiKey.value=unused", f"watchNamespaces={{{kube.namespace}}}")
    rbac = [
        d
        for d in docs
        if d["kind"] in {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    ]
    kube.plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(rbac))  # also a Role in default
    account = by_kind(docs, "ServiceAccount")[0]["metadata"]["name"]
    token = kube.run("create", "token", account, "--duration=1h").stdout.strip()
    config = kube.plane.kubeconfig_dict()
    config["users"] = [{"name": "operator", "user": {"token": token}}]
    config["contexts"] = [{"name": "operator", "context": {"cluster": "barrack-dev", "user": "operator"}}]
    config["current-context"] = "operator"
    path = tmp_path / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path


def test_rbac_proof_operator_as_the_chart_service_account(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, service_account_kubeconfig: Path
) -> None:
    # The account may do no more than the chart grants: e.g. it reads Secrets in its own namespace
    # (the accounts' keys) and nowhere else.
    def can_i(*what: str, namespace: str = kube.namespace) -> str:
        kubectl = [
            str(find_binary("kubectl")),
            f"--kubeconfig={service_account_kubeconfig}",
            "-n",
            namespace,
        ]
        return subprocess.run(
            [*kubectl, "auth", "can-i", *what], capture_output=True, text=True, check=False
        ).stdout.strip()

    assert can_i("patch", "barrackvolumes/status") == "yes"
    assert can_i("get", "secrets") == "yes" and can_i("get", "secrets", namespace="default") == "no"
    assert can_i("list", "secrets") == "no"
    assert can_i("update", "leases/barrack-operator") == "yes"
    assert can_i("update", "leases/another-lease") == "no"
    assert can_i("get", "customresourcedefinitions/barrackvolumes.barrack.ai") == "yes"
    assert can_i("get", "customresourcedefinitions/servicemonitors.monitoring.coreos.com") == "no"
    assert can_i("delete", "customresourcedefinitions/barrackvolumes.barrack.ai") == "no"
    assert can_i("create", "barracksnapshots") == "yes" and can_i("delete", "barracksnapshots") == "yes"
    assert can_i("delete", "barrackvolumes") == "no" and can_i("create", "barrackinstances") == "no"
    assert can_i("get", "customresourcedefinitions/barracksnapshotschedules.barrack.ai") == "yes"
    settings = {**OPERATOR_SETTINGS, "LEADER_ELECTION_NAMESPACE": kube.namespace}  # the Lease's Role
    with running_operator(
        kube, sim, api_key_file, tmp_path, settings, kubeconfig=service_account_kubeconfig
    ) as op:
        try:
            create_attach_blocked_detach_delete(kube, sim)
            # A schedule's daemon (kopf's finalizer on it) and its status, as the service account.
            kube.apply(
                {
                    "apiVersion": "barrack.ai/v1alpha1",
                    "kind": "BarrackSnapshotSchedule",
                    "metadata": {"name": "rbac"},
                    "spec": {"schedule": "@every 10s", "instanceRef": {"name": "absent"}},
                }
            )
            kube.wait_condition("bsched", "rbac", "Synced", "False", reason="NoInstances")
            kube.run("delete", "bsched", "rbac", "--timeout=30s")
        except BaseException:
            print(op.log()[-20000:])
            raise
    log = op.log()
    # A refusal reads "Forbidden" in kopf's errors and "403, message=" in the status writer's;
    # a bare "403" also occurs in uids and timestamps.
    assert "Forbidden" not in log and "403, message=" not in log, log[-5000:]


def monitoring_docs(namespace: str) -> list[dict[str, Any]]:
    return render(
        namespace,
        "apiKey.value=k",
        "metrics.prometheusRule.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
    )


def monitoring_queries(docs: list[dict[str, Any]]) -> list[str]:
    """Every PromQL expression of the chart's alerts and dashboard."""
    rule = by_kind(docs, "PrometheusRule")[0]
    alerts = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    dashboard = json.loads(next(iter(by_kind(docs, "ConfigMap")[0]["data"].values())))
    return alerts + [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_alerts_and_dashboard_are_optional_render_lint_and_apply(kube: Kube) -> None:
    assert not by_kind(render(kube.namespace, "apiKey.value=k"), "PrometheusRule")
    assert not by_kind(render(kube.namespace, "apiKey.value=k"), "ConfigMap")
    kube.plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(PROMETHEUS_RULE_CRD))
    kube.plane.kubectl("wait", "--for=condition=Established", "crd/prometheusrules.monitoring.coreos.com")
    docs = monitoring_docs(kube.namespace)
    rules = [r for g in by_kind(docs, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["expr"] and rule["for"] and rule["labels"]["severity"], rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
    dashboard = by_kind(docs, "ConfigMap")[0]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["barrack-operator.json"])["panels"]
    assert len(panels) >= 8 and all(p["targets"] for p in panels)
    assert all(re.search(r"barrack_[a-z_]+", q) for q in monitoring_queries(docs))
    lint = helm(
        "lint", str(CHART), "--set", "apiKey.value=k", "--set", "metrics.prometheusRule.enabled=true",
        "--set", "metrics.grafanaDashboard.enabled=true", "--strict",
    )  # fmt: skip
    assert "0 chart(s) failed" in lint.stdout, lint.stdout
    out = dry_run(kube, docs)
    assert "prometheusrule.monitoring.coreos.com/barrack-barrack-operator created (server dry run)" in out


def test_network_policy_and_image_digest_are_optional_and_apply(kube: Kube) -> None:
    plain = render(kube.namespace, "apiKey.value=k")
    assert not by_kind(plain, "NetworkPolicy")
    digest = "sha256:" + "0123456789abcdef" * 4
    docs = render(kube.namespace, "apiKey.value=k", "networkPolicy.enabled=true", f"image.digest={digest}")
    policy = by_kind(docs, "NetworkPolicy")[0]["spec"]
    assert {p["port"] for rule in policy["egress"] for p in rule["ports"]} == {53, 443, 6443}
    assert {p["port"] for p in policy["ingress"][0]["ports"]} == {"metrics", "health"}
    container = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(f"@{digest}")
    assert "networkpolicy.networking.k8s.io/barrack-barrack-operator created (server dry run)" in dry_run(
        kube, docs
    )


def test_a_bare_helm_template_assumes_a_current_kubernetes() -> None:
    """The helm the harness builds carries the Kubernetes version of its client-go (as helm's own
    release builds do), so ``helm template`` and ``helm lint`` without --kube-version meet the
    chart's kubeVersion (a helm built without it assumes 1.20 and refuses the chart)."""
    assert 'kubeVersion: ">=1.28.0-0"' in (CHART / "Chart.yaml").read_text()
    result = helm("template", "x", str(CHART), "--set", "apiKey.value=k", check=False)
    assert result.returncode == 0 and "kind: Deployment" in result.stdout, result.stderr
    lint = helm("lint", str(CHART), "--set", "apiKey.value=k", "--strict")
    assert "0 chart(s) failed" in lint.stdout
