"""The operator's own writes to Kubernetes: the status subresource, as a JSON merge patch.

Kopf watches and owns finalizers; the long-running per-object reconcile loops write their status
here, with the credentials the kubernetes client reads from the kubeconfig or the in-cluster
service account.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from barrack_operator.resources.specs import GROUP, VERSION


class StatusWriter:
    def __init__(self) -> None:
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        self._configuration = configuration
        context = (
            ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if configuration.verify_ssl
            else False
        )
        if isinstance(context, ssl.SSLContext) and configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        self._http = httpx.AsyncClient(base_url=configuration.host, verify=context, timeout=30.0)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/merge-patch+json"}
        token = self._configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        return headers

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Merge-patch the status; False when the object is already gone."""
        url = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}/status"
        response = await self._http.patch(url, json={"status": status}, headers=self._headers())
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    async def aclose(self) -> None:
        await self._http.aclose()
