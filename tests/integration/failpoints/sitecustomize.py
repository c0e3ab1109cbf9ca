"""A failpoint in the operator process under test, put there from outside (as etcd's gofail
puts one into a test build), so that nothing of it ships: the tests that use it put this
directory first on the operator's ``PYTHONPATH``, and Python imports this module as the process
starts.

While the file ``BARRACK_TEST_FAILPOINT`` names exists, a BarrackVolume whose name is in it gets
an unexpected error from its reconcile, after the reconcile did its work (its Barrack calls were
sent): the operator's catch-all, reached as a bug in a pass would reach it. Removing the file
ends the fault."""

from __future__ import annotations

import os
from pathlib import Path

_FILE = os.environ.get("BARRACK_TEST_FAILPOINT")

if _FILE:
    from barrack_operator.resources import volume

    _reconcile = volume.reconcile

    def _failing(name: str) -> bool:
        try:
            return name in Path(_FILE).read_text().split()
        except FileNotFoundError:
            return False

    async def _failing_reconcile(ctx, obj):  # type: ignore[no-untyped-def]
        outcome = await _reconcile(ctx, obj)
        if _failing(obj.name):
            raise RuntimeError(f"failpoint: the reconcile of {obj.name} fails after its calls")
        return outcome

    volume.reconcile = _failing_reconcile
