"""The references registry: every watched object's last-seen Barrack id and readiness, which object
claims (owns) which Barrack id, and which objects want waking when a referent or a Barrack
resource changes. Kopf-free; the runtime feeds it each watch event."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from barrack_operator.conditions import READY
from barrack_operator.resources.model import RefInfo
from barrack_operator.resources.schedule import matches
from barrack_operator.resources.specs import LabelSelector, LocalRef
from barrack_operator.workqueue import WorkQueue


@dataclass
class Registry:
    """Every watched object's last-seen Barrack id and readiness, who claims which Barrack id, and
    which objects want waking when a referent or a Barrack resource changes."""

    objects: dict[tuple[str, str, str], RefInfo] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    dependents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    watching: dict[str, set[str]] = field(default_factory=dict)
    queue: WorkQueue | None = None

    def get(self, kind: str, namespace: str, name: str) -> RefInfo | None:
        return self.objects.get((kind, namespace, name))

    def claimed_by_other(self, barrack_id: str, uid: str) -> bool:
        owner = self.owners.get(barrack_id)
        return owner is not None and owner != uid

    def manager_of(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object that manages the Barrack id, if any."""
        owner = self.owners.get(barrack_id)
        if owner is None or owner == uid:
            return None
        for (kind, namespace, name), info in self.objects.items():
            if info.uid == owner:
                return f"{kind} {namespace}/{name}"
        return "another object"

    def claim(self, barrack_id: str, uid: str) -> str | None:
        manager = self.manager_of(barrack_id, uid)
        if manager is None:
            self.owners[barrack_id] = uid
        return manager

    def unclaim(self, barrack_id: str, uid: str) -> None:
        if self.owners.get(barrack_id) == uid:
            del self.owners[barrack_id]

    def recorded_by_other(self, barrack_id: str, uid: str) -> str | None:
        for (kind, namespace, name), info in list(self.objects.items()):
            if info.id == barrack_id and info.uid != uid and info.manages:
                return f"{kind} {namespace}/{name}"
        return None

    def name_of(self, kind: str, namespace: str, barrack_id: str) -> str | None:
        for (k, ns, name), info in self.objects.items():
            if k == kind and ns == namespace and info.id == barrack_id:
                return name
        return None

    def of_kind(self, kind: str, namespace: str) -> list[tuple[str, RefInfo]]:
        """The objects of a kind in a namespace, by name."""
        return [(n, info) for (k, ns, n), info in list(self.objects.items()) if k == kind and ns == namespace]

    def selected_instances(
        self, namespace: str, ref: LocalRef | None, selector: LabelSelector | None
    ) -> tuple[list[tuple[str, RefInfo]], str]:
        """The BarrackInstances a schedule names (``instanceRef``) or selects (``instanceSelector``),
        by name; when there are none, why."""
        if ref is not None:
            info = self.get("BarrackInstance", namespace, ref.name)
            if info is None:
                return [], f"BarrackInstance {ref.name} does not exist in {namespace}"
            return [(ref.name, info)], ""
        assert selector is not None, "the CRD requires one of the two"
        found = sorted(
            (name, info)
            for name, info in self.of_kind("BarrackInstance", namespace)
            if matches(selector, info.labels)
        )
        return found, "" if found else f"no BarrackInstance in {namespace} matches spec.instanceSelector"

    def namespace_of(self, key: str) -> str | None:
        """The namespace of the object of this uid, or that records this Barrack id."""
        for (_, namespace, _), info in list(self.objects.items()):
            if key in (info.uid, info.id):
                return namespace
        return None

    def ids_in(self, namespace: str) -> set[str]:
        """The Barrack ids the managing objects of a namespace record."""
        return {
            info.id
            for (_, ns, _), info in list(self.objects.items())
            if ns == namespace and info.id and info.manages
        }

    def observe(self, kind: str, body: dict[str, Any], deleted: bool) -> bool:
        """Record an object's latest state; True when its id or readiness changed."""
        meta, status = body.get("metadata", {}), body.get("status") or {}
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        if deleted:
            info = self.objects.pop(key, None)
            if info and info.id and self.owners.get(info.id) == info.uid:
                del self.owners[info.id]
            return info is not None
        ready = any(
            c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions", [])
        )
        info = RefInfo(
            uid=meta.get("uid", ""),
            id=status.get("id"),
            ready=ready,
            state=status.get("state"),
            labels=meta.get("labels") or {},
            account=((body.get("spec") or {}).get("accountRef") or {}).get("name"),
            region=(body.get("spec") or {}).get("region") or _landed_region(status),
            instance_ref=((body.get("spec") or {}).get("instanceRef") or {}).get("name"),
            manages=(body.get("spec") or {}).get("managementPolicy") != "Observe",
        )
        previous = self.objects.get(key)
        self.objects[key] = info
        if info.id and info.manages:  # an observer never owns: it changes nothing
            self.owners.setdefault(info.id, info.uid)
        return previous is None or (previous.id, previous.ready, previous.state) != (
            info.id,
            info.ready,
            info.state,
        )

    def watch(self, uid: str, keys: set[str]) -> None:
        self._unwatch(uid)
        self.watching[uid] = set(keys)
        for key in keys:
            self.dependents[key].add(uid)

    def _unwatch(self, uid: str) -> None:
        for key in self.watching.pop(uid, ()):
            waiting = self.dependents.get(key)
            if waiting is not None:
                waiting.discard(uid)
                if not waiting:
                    del self.dependents[key]

    def wake(self, key: str) -> None:
        for uid in list(self.dependents.get(key, ())):
            if self.queue is not None and uid in self.queue:
                self.queue.wake(uid)

    def forget(self, uid: str) -> None:
        self._unwatch(uid)


def _landed_region(status: dict[str, Any]) -> str | None:
    """The region an object's status says its resource is in: an instance's placement, a volume's
    region."""
    placement = status.get("placement") or {}
    return placement.get("region") or status.get("region")
