"""Facts kept in one place stay in one place: generated CRDs match the models, layers import only
what they may, and the control-plane versions agree between Python and the Go helper modules."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from barrack_operator import apiref, crds
from barrack_operator.conditions import READY, SYNCED, Condition, merge_conditions
from barrack_operator.devcluster import binaries
from barrack_operator.resources.kinds import ALL_KINDS, KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator"


def test_committed_crds_match_the_models() -> None:
    for kind in KINDS:
        committed = (ROOT / "crds" / f"barrack.ai_{kind.plural}.yaml").read_text()
        assert committed == crds.render(kind), (
            f"crds/ drifted for {kind.kind}: run `barrack-operator crds -o crds`"
        )


def test_every_schema_field_has_a_description() -> None:
    def walk(node: dict[str, object], path: str) -> None:
        for name, prop in (node.get("properties") or {}).items():  # type: ignore[attr-defined]
            if name in {"apiVersion", "kind", "metadata"}:
                continue
            assert prop.get("description"), f"{path}.{name} has no description"
            walk(prop, f"{path}.{name}")
            if "items" in prop:
                walk(prop["items"], f"{path}.{name}[]")

    for kind in KINDS:
        schema = crds.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[index]
        walk(schema, kind.kind)


def test_crds_follow_the_api_conventions() -> None:
    """Issue 19: conditions are a list-map keyed by type (one per type; server-side apply merges
    them by type), lastTransitionTime is an RFC 3339 date-time, status is True, False or Unknown;
    the CRDs tell Helm to keep them."""
    for kind in KINDS:
        crd = crds.crd(kind)
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]  # type: ignore[index]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        item = conditions["items"]
        assert "type" in item["required"]
        assert item["properties"]["lastTransitionTime"] == {
            **item["properties"]["lastTransitionTime"],
            "type": "string",
            "format": "date-time",
        }
        assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # type: ignore[index]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _layer_imports(folder: str) -> dict[Path, set[str]]:
    return {p: _imports(p) for p in (PACKAGE / folder).rglob("*.py")}


KOPF_ALLOWED = {"barrack_operator/handlers", "barrack_operator/logs.py"}
"""The only places kopf may be imported: its glue, and the log set-up (kopf's formatters)."""


def _imports_kopf(names: set[str]) -> bool:
    return any(n == "kopf" or n.startswith("kopf.") for n in names)


def test_layers() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if _imports_kopf(_imports(path)):
            assert any(relative == a or relative.startswith(a + "/") for a in KOPF_ALLOWED), (
                f"{relative} imports kopf: only {sorted(KOPF_ALLOWED)} may"
            )
    for folder in ("barrack_operator/resources", "barrack_operator/engine"):
        for path, names in _layer_imports(folder).items():
            assert not any(n.startswith("barrack_operator.handlers") for n in names), (
                f"{path} imports handlers"
            )
    for path, names in _layer_imports("barrack_operator/barrack").items():
        bad = [
            n
            for n in names
            if n == "kopf"
            or (n.startswith("barrack_operator.") and not n.startswith("barrack_operator.barrack"))
        ]
        assert not bad, f"{path} imports {bad}"
    allowed = {
        "barrack_operator.barrack",
        "barrack_operator.barrack.routes",
        "barrack_operator.barrack.models",
        "barrack_operator.barrack.requests",
    }
    for path, names in _layer_imports("barrack_sim").items():
        bad = [n for n in names if n.startswith("barrack_operator") and n not in allowed]
        bad += [n for n in names if n == "kopf"]
        assert not bad, f"{path} imports {bad}"
    assert not (PACKAGE / "__init__.py").exists(), "operator/ must stay a plain source root"


def test_control_plane_versions_agree_with_the_go_helper_modules() -> None:
    def required(module_dir: str, module: str) -> str:
        text = (binaries.TOOLS / module_dir / "go.mod").read_text()
        match = re.search(rf"^require {re.escape(module)} v(\S+)$", text, re.M)
        assert match, f"{module} not required in devcluster/tools/{module_dir}/go.mod"
        return match.group(1)

    assert required("kube", "k8s.io/kubernetes") == binaries.KUBERNETES_VERSION
    assert required("etcd", "go.etcd.io/etcd/server/v3") == binaries.ETCD_VERSION
    assert required("helm", "helm.sh/helm/v3") == binaries.HELM_VERSION


def test_condition_transition_time_moves_only_on_status_change() -> None:
    first = merge_conditions([], [Condition(READY, False, "Creating")], 1, now="t1")
    same = merge_conditions(first, [Condition(READY, False, "Progressing", "still")], 2, now="t2")
    flipped = merge_conditions(
        same, [Condition(READY, True, "Available"), Condition(SYNCED, True, "Reconciled")], 2, now="t3"
    )
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "Progressing"
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["observedGeneration"] == 2
    assert [c["type"] for c in flipped] == [READY, SYNCED]


def test_dev_cluster_names_go_when_it_must_build_and_cannot(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from barrack_operator.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    said: list[str] = []
    try:
        binaries.ensure_binaries(("etcd",), say=said.append)
    except binaries.MissingBinary as exc:
        assert "needs Go" in str(exc) and "etcd" in str(exc)
    else:
        raise AssertionError("no MissingBinary without Go")
    assert main(["dev-cluster", "--kubeconfig", str(tmp_path / "kc")]) == 1
    assert binaries.TOOLS.joinpath("kube", "go.mod").is_file()  # the pins ship inside the package


def test_run_help_says_where_the_lease_identity_comes_from() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "barrack_operator.cli", "run", "--help"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"},
        cwd=Path(__file__).resolve().parents[2] / "operator",
    )  # fmt: skip
    assert "POD_NAME" in result.stdout and "host name" in result.stdout


KIND_MODULES = ("volume", "instance", "firewall", "sshkey", "snapshot", "image", "schedule")


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
SIZE_EXEMPT = {"barrack_operator/cli.py:build_parser"}
"""argparse set-up reads best as one function; the simulator and the test kit are not product."""


def test_no_product_module_or_function_is_too_long_to_read() -> None:
    too_long = []
    for path in sorted((PACKAGE / "barrack_operator").rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{relative}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{relative}:{node.name}" not in SIZE_EXEMPT:
                    too_long.append(f"{relative}:{node.name}: {length} lines")
    assert not too_long, (
        f"split by job (modules <= {MAX_MODULE_LINES}, functions <= {MAX_FUNCTION_LINES}): {too_long}"
    )


def test_no_kind_module_imports_another() -> None:
    """Kinds stand side by side: a rule two kinds share lives in a shared module (rules, sources,
    deletion, messages), never in one kind that the other imports."""
    for name in KIND_MODULES:
        names = _imports(PACKAGE / "barrack_operator" / "resources" / f"{name}.py")
        others = {f"barrack_operator.resources.{other}" for other in KIND_MODULES if other != name}
        assert not names & others, f"resources/{name}.py imports {sorted(names & others)}"


@pytest.mark.parametrize(
    ("message", "accepted"),
    [
        ("Hand the Lease over at once on a clean stop\n\nBecause kopf waited 5 s.\n", True),
        ("Process the queue first\n", True),
        ("Speed up the inventory's looks\n", True),
        ("Added a test\n", False),  # not the imperative
        ("Fixes the finalizer\n", False),
        ("Make it so.\n", False),  # a period
        ("Make it so\nno blank line before the body\n", False),
        ("Make " + "x" * 70 + "\n", False),  # 75 characters
    ],
)
def test_the_commit_msg_hook_keeps_subjects_short_and_imperative(
    tmp_path: Path, message: str, accepted: bool
) -> None:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    hook = Path(__file__).resolve().parents[2] / "hack" / "git-hooks" / "commit-msg"
    result = subprocess.run(["bash", str(hook), str(path)], capture_output=True, text=True, check=False)
    assert (result.returncode == 0) == accepted, result.stderr


def test_the_api_reference_is_what_the_crds_say() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == apiref.render(), (
        "docs/api-reference.md drifted from the CRDs: run `barrack-operator api-reference -o docs/api-reference.md`"
    )
    for kind in ALL_KINDS:  # every field of every kind, spec and status
        assert f"## {kind.kind}\n" in committed


def test_the_readme_ends_and_links_every_page_of_the_manual() -> None:
    """A README a newcomer reads to the end (what it is, the commands, install, a first example,
    links); the manual is docs/, every page of it linked from there, and no link leads nowhere."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    unlinked = [page for page in pages if f"](docs/{page})" not in readme]
    assert unlinked == [], f"docs pages the README does not link: {unlinked}"
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), (
                f"{doc.relative_to(ROOT)} links to {target}, which is missing"
            )


def test_accounts_and_metrics_do_not_import_each_other() -> None:
    package = PACKAGE / "barrack_operator"
    assert "barrack_operator.accounts" not in _imports(package / "metrics.py")
    assert "barrack_operator.metrics" not in _imports(package / "accounts.py")


def test_every_simulator_given_its_own_ids_gets_a_range_no_other_test_uses() -> None:
    """Import leaves out what any object in the cluster records, and the integration tests share
    one cluster: two simulators starting at one --first-id hand out the same ids, and one test's
    resource reads as managed in another's (a stray volume left out of an import)."""
    integration = Path(__file__).resolve().parents[1] / "integration"
    firsts = Counter(
        n
        for path in integration.rglob("*.py")
        for n in re.findall(r'"--first-id",\s*"(\d+)"', path.read_text())
    )
    assert firsts and [n for n, count in firsts.items() if count > 1] == [], firsts
