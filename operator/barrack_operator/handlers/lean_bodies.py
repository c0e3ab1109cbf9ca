"""Watched bodies without ``metadata.managedFields`` or kubectl's last-applied configuration.

The operator keeps the latest body of every watched object for as long as the object lives (what
its work queue reconciles from). The API server sends each object's field-manager bookkeeping
with it: nested ``fieldsV1`` maps for the client that created it, the create mark with the
finalizer and every status writer, which is most of a small object's decoded body; ``kubectl apply`` adds a copy of
the whole manifest as an annotation. Nothing in the operator or in kopf reads either (every write
is a merge patch of named fields), so both are dropped as each event arrives, before kopf passes
the body on (about 10 KB per object: 36 MB of 2,000 volumes' decoded bodies became 15 MB).

Kopf has no setting for this; the one seam is the watch generator its queueing module calls by
module attribute (``kopf._cogs.clients.watching.infinite_watch``). :func:`install` wraps it once;
if a kopf release moves it, the operator logs that and runs with full bodies (the unit test
``test_lean_bodies`` fails first).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)
_MARK = "_barrack_lean"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip(event: Any) -> Any:
    """The watch event with its object's managedFields and last-applied annotation dropped
    (other events as they are)."""
    if isinstance(event, dict):
        obj = event.get("object")
        if isinstance(obj, dict):
            meta = obj.get("metadata")
            if isinstance(meta, dict):
                meta.pop("managedFields", None)
                annotations = meta.get("annotations")
                if isinstance(annotations, dict):
                    annotations.pop(LAST_APPLIED, None)
    return event


def install() -> bool:
    """Wrap kopf's watch stream so every event's body arrives without managedFields; True when
    the wrapper is in place (installing twice is a no-op)."""
    try:
        from kopf._cogs.clients import watching

        original: Any = watching.infinite_watch
    except (ImportError, AttributeError):
        log.warning("kopf's watch stream moved: bodies keep their managedFields (more memory per object)")
        return False
    if getattr(original, _MARK, False):
        return True

    async def lean_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with contextlib.aclosing(original(*args, **kwargs)) as stream:
            async for event in stream:
                yield strip(event)

    setattr(lean_watch, _MARK, True)
    watching.infinite_watch = lean_watch
    return True
