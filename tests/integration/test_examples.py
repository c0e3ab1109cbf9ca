"""Issue 19: every example a user copies works. Each YAML block of README.md and docs/*.md (```yaml
fences), and each manifest NOTES.txt tells a user to pipe into kubectl (its heredocs), is applied
to the real apiserver with a server-side dry run: the CRDs' own schemas and CEL rules judge it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, Kube

pytestmark = pytest.mark.integration
NOTES = ROOT / "charts" / "barrack-operator" / "templates" / "NOTES.txt"


def fenced_yaml(path: Path) -> list[tuple[str, str]]:
    text = path.read_text()
    return [
        (f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}", m.group(1))
        for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, flags=re.M | re.S)
    ]


def notes_heredocs() -> list[tuple[str, str]]:
    text = NOTES.read_text()
    blocks = []
    for m in re.finditer(r"<<'YAML' \| kubectl apply -f -\n(.*?)^\s*YAML$", text, flags=re.M | re.S):
        block = textwrap.dedent(m.group(1))
        assert "{{" not in block, "a NOTES example must be plain YAML, not a template"
        blocks.append((f"{NOTES.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}", block))
    return blocks


EXAMPLES = [
    *fenced_yaml(ROOT / "README.md"),
    *(block for doc in sorted((ROOT / "docs").glob("*.md")) for block in fenced_yaml(doc)),
    *notes_heredocs(),
]


def test_the_examples_are_found() -> None:
    """The extraction itself: README, docs and NOTES each hold examples (so a broken pattern
    cannot pass by finding none)."""
    sources = {where.split(":")[0] for where, _ in EXAMPLES}
    assert {"README.md", "docs/argocd.md", str(NOTES.relative_to(ROOT))} <= sources, sources


@pytest.mark.parametrize(("where", "block"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_is_accepted_by_the_apiserver(kube: Kube, where: str, block: str) -> None:
    docs = [doc for doc in yaml.safe_load_all(block) if doc]
    assert docs, f"{where}: no manifest in the block"
    for doc in docs:  # each in its own namespace, if it names one (argocd exists in a real cluster)
        namespace = doc.get("metadata", {}).get("namespace") or kube.namespace
        kube.plane.kubectl("create", "namespace", namespace, check=False)
        result = kube.plane.kubectl(
            "-n",
            namespace,
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input_text=yaml.safe_dump(doc),
            check=False,
        )
        assert result.returncode == 0, f"{where}: {result.stderr}"
        assert "(server dry run)" in result.stdout, result.stdout
