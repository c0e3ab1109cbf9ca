"""Uninstall detection: when a kind's CRD is being deleted, its objects go without a Barrack
call, whatever their deletionPolicy; an uninstall never deletes a Barrack resource."""

from __future__ import annotations

import logging
from collections.abc import Callable

from barrack_operator.conditions import SYNCED, Condition, Reason
from barrack_operator.engine.objects import FINALIZER, object_ref, view
from barrack_operator.engine.writer import ObjectWriter
from barrack_operator.kube import StatusWriter
from barrack_operator.resources.kinds import ALL_KINDS, Kind
from barrack_operator.resources.model import Memory, ObjectView, Outcome, Timing
from barrack_operator.resources.ownership import owned_id
from barrack_operator.resources.specs import GROUP, VERSION

log = logging.getLogger(__name__)


class Uninstall:
    def __init__(
        self, kube: Callable[[], StatusWriter | None], writer: ObjectWriter, memory: Memory, timing: Timing
    ) -> None:
        self._kube = kube
        self.writer = writer
        self.memory = memory
        self.timing = timing

    def _client(self) -> StatusWriter:
        kube = self._kube()
        assert kube is not None, "the uninstall is judged once the operator runs"
        return kube

    async def release_all(self, plural: str, namespaces: list[str]) -> None:
        """Release every object of a kind whose CRD is being deleted, as its finalizer would (a
        Retained event, no Barrack call), for the objects kopf no longer serves."""
        kube = self._client()
        kind = next(k for k in ALL_KINDS if k.plural == plural)
        paths = [f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}" for ns in namespaces] or [
            f"/apis/{GROUP}/{VERSION}/{plural}"
        ]
        for path in paths:
            status, listing = await kube.request_json("GET", path)
            if status != 200:
                continue
            for body in listing.get("items", []):
                finalizers = body.get("metadata", {}).get("finalizers") or []
                if FINALIZER not in finalizers or not body["metadata"].get("deletionTimestamp"):
                    continue
                obj = view(kind, body)
                if kind.barrack_resource:
                    outcome = await self.outcome(kind, obj)
                    if outcome is not None and not outcome.done:
                        continue
                    for event in outcome.events if outcome is not None else ():
                        await self.writer.post_event(obj, event, finalizing=True)
                await kube.remove_finalizer(plural, obj.namespace, obj.name, FINALIZER, finalizers)

    async def outcome(self, kind: Kind, obj: ObjectView) -> Outcome | None:
        """When the kind's CRD is being deleted (an uninstall cascading to every object), the object
        goes without any Barrack call, whatever its deletionPolicy: an uninstall never deletes a
        Barrack resource. None when the CRD stands (a deletion as usual). When the CRD cannot be
        read, nothing is decided and no call is made: the finalizer stays and is tried again."""
        if obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only:
            return None  # released without a Barrack call anyway
        crd = f"{kind.plural}.{GROUP}"
        try:
            status, body = await self._client().request_json(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
            )
        except Exception as exc:
            status, body = 0, {"message": str(exc)}
        if status == 200 and not body.get("metadata", {}).get("deletionTimestamp"):
            return None
        if status not in (200, 404):
            message = (
                f"cannot tell a deletion from an uninstall: reading the CRD {crd} answered "
                f"{status or 'nothing'} {body.get('message', '')}".rstrip()
                + "; the operator needs get on it (the chart grants it) and retries; nothing is deleted meanwhile"
            )
            out = Outcome(requeue_after=self.timing.blocked_requeue, backoff=True)
            out.conditions.append(Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, message))
            return out
        return self._retained(kind, obj, crd)

    def _retained(self, kind: Kind, obj: ObjectView, crd: str) -> Outcome:
        barrack_id = owned_id(obj, self.memory)
        what = f"{kind.kind.removeprefix('Barrack').lower()} {barrack_id}" if barrack_id else "resource"
        again = f"; to manage it again, install the CRDs and apply an object with adoptId: {barrack_id}"
        out = Outcome(done=True)
        out.note(
            "Retained",
            f"The CRD {crd} is being deleted (an uninstall): this object goes without a Barrack call, "
            f"and the Barrack {what} is kept" + (again if barrack_id else ""),
        )
        log.info("Uninstall: released without a Barrack call (%s kept)", what, extra=object_ref(obj))
        return out
