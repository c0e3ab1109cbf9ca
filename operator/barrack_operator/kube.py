"""The operator's own writes to Kubernetes: the status subresource, its marks (annotations) and
late-initialized spec fields as JSON merge patches, and the leader-election Lease.

Kopf watches; the operator's finalizer is written here, in the same write as the create mark when
there is one (see :meth:`StatusWriter.patch_adding_finalizer`); reconcile writes its status
here, with the credentials the kubernetes client reads from the kubeconfig or the in-cluster
service account. The writes go over aiohttp (kopf's own HTTP client), which costs a fraction of
the CPU per request that httpx does; a burst of thousands of status writes is CPU-bound otherwise.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from barrack_operator.resources.model import KubernetesRefused
from barrack_operator.resources.specs import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ObjectGone(Exception):
    """The object is gone, or its deletion began (no finalizer can be added to it any more)."""


def object_path(plural: str, namespace: str, name: str) -> str:
    """The API path of a namespaced object of the operator's group."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}"


class StatusWriter:
    """At most ``concurrency`` writes are in flight; the rest wait their turn."""

    def __init__(self, concurrency: int = 8) -> None:
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        self._configuration = configuration
        self._ssl: ssl.SSLContext | bool = False
        if configuration.verify_ssl:
            self._ssl = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if configuration.cert_file:
                self._ssl.load_cert_chain(configuration.cert_file, configuration.key_file)
        self._base = configuration.host.rstrip("/")
        self._slots = asyncio.Semaphore(concurrency)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(total=30.0),
        )
        self._lease_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=2, ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(total=30.0),
        )
        self.lease = LeaseLane(self)
        """The Lease's requests: their own connections and no queue (see :class:`LeaseLane`)."""

    def _headers(self) -> dict[str, str]:
        """The merge-patch content type and the client's credentials headers (a bearer token from the
        kubeconfig, or the in-cluster token, which the client re-reads as it rotates)."""
        headers = {"Content-Type": MERGE_PATCH}
        settings: dict[str, Any] = dict(self._configuration.auth_settings())
        for setting in settings.values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Merge-patch the status (of a cluster-scoped object when ``namespace`` is empty); False
        when the object is already gone."""
        scope = f"namespaces/{namespace}/" if namespace else ""
        url = f"{self._base}/apis/{GROUP}/{VERSION}/{scope}{plural}/{name}/status"
        async with (
            self._slots,
            self._session.patch(url, json={"status": status}, headers=self._headers()) as response,
        ):
            if response.status == 404:
                return False
            response.raise_for_status()
            return True

    async def annotate(
        self, plural: str, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        """Merge-patch annotations onto the object (None removes one); raises unless written."""
        await self.patch_object(plural, namespace, name, {"metadata": {"annotations": annotations}})

    async def patch_object(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Merge-patch the object itself (metadata or spec); raises unless written."""
        await self._merge_patch(object_path(plural, namespace, name), body)

    async def patch_adding_finalizer(
        self,
        plural: str,
        namespace: str,
        name: str,
        finalizer: str,
        seen: tuple[list[str], str],
        patch: dict[str, Any],
    ) -> None:
        """Merge-patch ``patch`` onto the object with ``finalizer`` added in the same write.
        ``seen`` is the object's finalizers and the resourceVersion they were read at: a merge
        patch writes the list whole, so the write carries that version, and on a conflict the
        object is read again and the write tried again (three tries). Raises :class:`ObjectGone`
        when the object is gone or being deleted (no finalizer may be added then), RuntimeError
        unless written."""
        path = object_path(plural, namespace, name)
        finalizers, version = seen
        for _ in range(3):
            body = {**patch, "metadata": {**patch.get("metadata", {})}}
            if finalizer not in finalizers:
                body["metadata"].update(finalizers=[*finalizers, finalizer], resourceVersion=version)
            status, payload = await self.request_json("PATCH", path, body, content_type=MERGE_PATCH)
            if status < 300:
                return
            if status == 404:
                raise ObjectGone(f"{plural} {namespace}/{name} is gone")
            if status != 409:
                raise RuntimeError(
                    f"writing {plural} {namespace}/{name} failed: {status} {payload.get('message', '')}"
                )
            finalizers, version, deleting = await self._finalizers(path)
            if deleting:
                raise ObjectGone(f"{plural} {namespace}/{name} is being deleted")
        raise RuntimeError(f"writing {plural} {namespace}/{name} failed: it kept changing (409 three times)")

    async def remove_finalizer(
        self, plural: str, namespace: str, name: str, finalizer: str, finalizers: list[str]
    ) -> None:
        """Take ``finalizer`` out of the object's ``finalizers`` (as last read): a JSON patch that
        tests the entry at its index before removing it, so another controller's finalizers are
        never rewritten; when the list changed, it is read again (three tries). Gone already is
        fine; raises RuntimeError unless removed."""
        path = object_path(plural, namespace, name)
        for _ in range(3):
            if finalizer not in finalizers:
                return
            at = f"/metadata/finalizers/{finalizers.index(finalizer)}"
            ops = [{"op": "test", "path": at, "value": finalizer}, {"op": "remove", "path": at}]
            status, payload = await self.request_json("PATCH", path, ops, content_type=JSON_PATCH)
            if status < 300 or status == 404:
                return
            if status not in (409, 422):  # 422: the test failed, the list moved
                raise RuntimeError(
                    f"releasing {plural} {namespace}/{name} failed: {status} {payload.get('message', '')}"
                )
            try:
                finalizers, _, _ = await self._finalizers(path)
            except ObjectGone:
                return
        raise RuntimeError(f"releasing {plural} {namespace}/{name} failed: its finalizers kept changing")

    async def drop_owner_references(
        self, plural: str, namespace: str, name: str, owner_kind: str, references: list[dict[str, Any]]
    ) -> None:
        """Take every ownerReference to an owner of ``owner_kind`` off the object, keeping the
        others: a JSON patch that tests the list as last read before it replaces it (so a list
        another writer changed meanwhile is not rewritten; the next pass reads it again)."""
        kept = [r for r in references if r.get("kind") != owner_kind]
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/ownerReferences", "value": references}]
        ops.append(
            {"op": "replace", "path": "/metadata/ownerReferences", "value": kept}
            if kept
            else {"op": "remove", "path": "/metadata/ownerReferences"}
        )
        status, payload = await self.request_json(
            "PATCH", object_path(plural, namespace, name), ops, content_type=JSON_PATCH
        )
        if status >= 300 and status != 404:
            raise RuntimeError(
                f"releasing {plural} {namespace}/{name} from its {owner_kind} failed: "
                f"{status} {payload.get('message', '')}"
            )

    async def _finalizers(self, path: str) -> tuple[list[str], str, bool]:
        """The object's finalizers, its resourceVersion and whether its deletion began, read now;
        :class:`ObjectGone` when it is gone."""
        status, payload = await self.request_json("GET", path)
        meta = payload.get("metadata", {})
        if status == 404:
            raise ObjectGone(f"{path} is gone")
        if status != 200:
            raise RuntimeError(f"reading {path} failed: {status} {payload.get('message', '')}")
        finalizers = list(meta.get("finalizers") or [])
        return finalizers, str(meta.get("resourceVersion", "")), bool(meta.get("deletionTimestamp"))

    async def _merge_patch(self, path: str, body: dict[str, Any]) -> None:
        """Merge-patch whatever ``path`` names; raises unless written."""
        url = f"{self._base}{path}"
        async with self._slots, self._session.patch(url, json=body, headers=self._headers()) as response:
            response.raise_for_status()

    async def request_json(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        """Any other call to the apiserver: the status code and the JSON body."""
        async with self._slots:
            return await self._request_json(self._session, method, path, body, content_type)

    async def _request_json(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        body: Any,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        headers = {**self._headers(), "Content-Type": content_type}
        async with session.request(method, f"{self._base}{path}", json=body, headers=headers) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = {}
            return response.status, payload if isinstance(payload, dict) else {}

    async def create_object(self, plural: str, manifest: dict[str, Any]) -> bool:
        """Create an object of the operator's group; False when one of that name exists already
        (a create repeated after a crash); raises unless created or existing."""
        meta = manifest["metadata"]
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/{plural}"
        status, payload = await self.request_json("POST", path, manifest)
        if status == 409:
            return False
        if status >= 300:
            raise RuntimeError(
                f"creating {plural} {meta['name']} failed: {status} {payload.get('message', '')}"
            )
        return True

    async def delete_object(self, plural: str, namespace: str, name: str) -> None:
        """Delete an object of the operator's group (its finalizer then runs); gone already is fine."""
        path = object_path(plural, namespace, name)
        status, payload = await self.request_json("DELETE", path)
        if status >= 300 and status != 404:
            raise RuntimeError(f"deleting {plural} {name} failed: {status} {payload.get('message', '')}")

    async def write_secret(self, manifest: dict[str, Any]) -> None:
        """Create the Secret, or update the one of that name only when its controller is the
        manifest's owner (an instance writes only into a Secret it created or controls: never into
        another app's Secret of the same name, nor takes it over). ``create`` and ``patch`` on
        Secrets are all it needs: the owner is checked by the patch itself (a JSON patch that tests
        the controller reference's uid before it writes). :class:`SecretConflict` when the Secret
        is someone else's; raises unless written."""
        meta = manifest["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/secrets"
        status, payload = await self.request_json("POST", path, manifest)
        if status == 409:
            owner = meta["ownerReferences"][0]
            ops = [
                {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": owner["uid"]},
                {"op": "test", "path": "/metadata/ownerReferences/0/controller", "value": True},
                {"op": "add", "path": "/stringData", "value": manifest["stringData"]},
            ]
            status, payload = await self.request_json(
                "PATCH", f"{path}/{meta['name']}", ops, content_type=JSON_PATCH
            )
            if status == 422:
                raise SecretConflict(meta["namespace"], meta["name"], owner["kind"], owner["name"])
        if status >= 300:
            raise RuntimeError(
                f"writing Secret {meta['namespace']}/{meta['name']} failed: {status} {payload.get('message', '')}"
            )

    async def post_event(self, event: dict[str, Any]) -> None:
        """Create a core/v1 Event (see :func:`event_body`); raises unless created."""
        namespace = event["metadata"]["namespace"]
        status, payload = await self.request_json("POST", f"/api/v1/namespaces/{namespace}/events", event)
        if status >= 300:
            raise RuntimeError(f"posting an event failed: {status} {payload.get('message', '')}")

    async def aclose(self) -> None:
        await self._session.close()
        await self._lease_session.close()


class SecretConflict(Exception):
    """A Secret of the name an object writes to exists and is not controlled by that object."""

    def __init__(self, namespace: str, name: str, kind: str, owner: str) -> None:
        super().__init__(
            f"Secret {namespace}/{name} exists and is not controlled by {kind} {owner}: it is left untouched; "
            "set spec.writeConnectionSecretToRef.name to a Secret this object may create, or delete that "
            "Secret if it is a leftover"
        )


class LeaseLane:
    """Requests for the leader-election Lease. They never queue behind the writer's other
    requests: a burst of thousands of status writes holds every slot for seconds, and a renewal
    that waits past the renew deadline loses leadership (the process fences itself and stops)."""

    def __init__(self, writer: StatusWriter) -> None:
        self._writer = writer

    async def request_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await self._writer._request_json(self._writer._lease_session, method, path, body)


REPORTING_COMPONENT = "barrack-operator"
MAX_EVENT_MESSAGE = 1024


def reporting_instance() -> str:
    """Who reports: the pod's name (``POD_NAME``), else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def event_body(
    involved: dict[str, str], type_: str, reason: str, action: str, message: str
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (apiVersion, kind, namespace, name, uid), reported by
    ``barrack-operator`` from this pod, named as kubectl names its own (``<object>.<random>``)."""
    now = datetime.datetime.now(datetime.UTC)
    if len(message) > MAX_EVENT_MESSAGE:
        message = message[: MAX_EVENT_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{involved['name']}.{secrets.token_hex(8)}",
            "namespace": involved["namespace"],
        },
        "involvedObject": involved,
        "type": type_,
        "reason": reason,
        "action": action,
        "message": message,
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": reporting_instance(),
        "source": {"component": REPORTING_COMPONENT, "host": reporting_instance()},
        "firstTimestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "lastTimestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "eventTime": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "count": 1,
    }


class ConfigMapReader:
    """A ConfigMap's data by namespace and name (None: there is none), through the operator's
    Kubernetes client once it exists; :class:`KubernetesRefused` when Kubernetes cannot say."""

    def __init__(self, client: Callable[[], StatusWriter | None]) -> None:
        self._client = client

    async def __call__(self, namespace: str, name: str) -> dict[str, str] | None:
        client = self._client()
        if client is None:
            raise KubernetesRefused(f"reading ConfigMap {namespace}/{name}: no Kubernetes client yet")
        status, body = await client.request_json("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if status == 404:
            return None
        if status >= 400:
            raise KubernetesRefused(
                f"reading ConfigMap {namespace}/{name} failed: {status} {body.get('reason', '')}"
            )
        return {str(k): str(v) for k, v in (body.get("data") or {}).items()}
