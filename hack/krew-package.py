#!/usr/bin/env python3
"""Build the archive the krew manifest (deploy/krew/barrack.yaml) installs, and write its sha256
and the project's version into the manifest.

The archive holds a launcher, ``kubectl-barrack``, that runs the plugin from the installed
``barrack-operator`` package (``pip install barrack-operator``; krew installs files, not Python
packages), and the licence. It is built byte for byte the same each time (fixed times, owners
and order), so the sha256 in the manifest can be checked against a fresh build.

    hack/krew-package.py --out dist/      # writes dist/kubectl-barrack-<version>.tar.gz
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "krew" / "barrack.yaml"
LAUNCHER = """#!/bin/sh
# kubectl barrack: the Barrack operator's kubectl plugin (needs: pip install barrack-operator)
exec python3 -m barrack_operator.plugin.main "$@"
"""


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def archive() -> bytes:
    """The tar.gz, the same bytes on every build."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text, mode in (("kubectl-barrack", LAUNCHER, 0o755), ("LICENSE", _licence(), 0o644)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _licence() -> str:
    path = ROOT / "LICENSE"
    return path.read_text() if path.exists() else "Apache-2.0\n"


def updated_manifest(text: str, digest: str, ver: str) -> str:
    text = re.sub(r"(?m)^(\s*version:\s*)v?\S+$", rf"\g<1>v{ver}", text, count=1)
    text = re.sub(r"(?m)^(\s*sha256:\s*)\S+$", rf"\g<1>{digest}", text)
    return re.sub(
        r"/v[0-9][^/]*/kubectl-barrack-[^/\s]+\.tar\.gz", f"/v{ver}/kubectl-barrack-{ver}.tar.gz", text
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="dist", help="directory for the archive")
    args = parser.parse_args()
    data, ver = archive(), version()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"kubectl-barrack-{ver}.tar.gz").write_bytes(data)
    MANIFEST.write_text(updated_manifest(MANIFEST.read_text(), hashlib.sha256(data).hexdigest(), ver))
    print(f"{out / f'kubectl-barrack-{ver}.tar.gz'}: sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
