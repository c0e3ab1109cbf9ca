"""The plugin's reads and writes of the cluster, through the kubeconfig kubectl uses (``--kubeconfig``,
``--context``, ``-n`` as kubectl takes them): objects of the operator's kinds, their events, and
the day-two annotations."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from barrack_operator.resources.kinds import ALL_KINDS, Kind
from barrack_operator.resources.specs import GROUP, VERSION


class UnknownKind(ValueError):
    pass


def kind_named(word: str) -> Kind:
    """A kind by any of kubectl's names for it: BarrackVolume, barrackvolume(s), bvol."""
    lowered = word.lower()
    for kind in ALL_KINDS:
        if lowered in (kind.kind.lower(), kind.plural, kind.singular, kind.short_name):
            return kind
    known = ", ".join(k.short_name for k in ALL_KINDS)
    raise UnknownKind(f"the server doesn't have a resource type \"{word}\" (the operator's kinds: {known})")


class Cluster:
    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        k8s_config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        contexts, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        if context:
            active = next((c for c in contexts if c["name"] == context), active)
        self.namespace = namespace or (active or {}).get("context", {}).get("namespace") or "default"
        self.custom = k8s.CustomObjectsApi()
        self.core = k8s.CoreV1Api()

    def get(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            if kind.scope == "Cluster":
                return cast(
                    dict[str, Any], self.custom.get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
                )
            return cast(dict[str, Any], self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, name))  # fmt: skip
        except k8s.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_kind(self, kind: Kind, all_namespaces: bool = False) -> list[dict[str, Any]]:
        if kind.scope == "Cluster" or all_namespaces:
            listed = self.custom.list_cluster_custom_object(GROUP, VERSION, kind.plural)
        else:
            listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural)
        return cast(list[dict[str, Any]], cast(dict[str, Any], listed)["items"])

    def everything(self) -> dict[str, list[dict[str, Any]]]:
        """Every object of the operator's kinds in the namespace (accounts cluster-wide), by kind;
        a kind this user may not list is left out."""
        found: dict[str, list[dict[str, Any]]] = {}
        for kind in ALL_KINDS:
            try:
                found[kind.kind] = self.list_kind(kind)
            except k8s.ApiException as exc:
                if exc.status not in (403, 404):
                    raise
        return found

    def events(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"  # a cluster-scoped object's events
        selector = f"involvedObject.kind={obj['kind']},involvedObject.name={meta['name']}"
        return [e.to_dict() | {"lastTimestamp": _stamp(e.last_timestamp), "eventTime": _stamp(e.event_time)}
                for e in self.core.list_namespaced_event(namespace, field_selector=selector).items]  # fmt: skip

    def annotate(self, kind: Kind, name: str, annotations: dict[str, str | None]) -> None:
        body = {"metadata": {"annotations": annotations}}
        if kind.scope == "Cluster":
            self.custom.patch_cluster_custom_object(GROUP, VERSION, kind.plural, name, body)
        else:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, name, body
            )


def _stamp(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None
