"""How to reach an instance, as the Secret ``spec.writeConnectionSecretToRef`` names holds it
(kopf-free): ``host`` (the public IP), ``privateIP``, ``port``, ``username`` (``ubuntu`` on Ubuntu
images, ``root`` otherwise) and ``ssh``, a ready command line. The Secret is owned by its object
(Kubernetes deletes it with the object) and rewritten when the IP changes (a hibernate and restore
gives a new one)."""

from __future__ import annotations

from typing import Any

from barrack_operator.barrack import models as m

SSH_PORT = "22"


def username_for(image_name: str | None) -> str:
    return "ubuntu" if image_name and "ubuntu" in image_name.lower() else "root"


def connection_data(instance: m.VMInstance, image_name: str | None) -> dict[str, str]:
    username = username_for(image_name)
    host = instance.public_ip or ""
    target = host or instance.private_ip or ""
    return {
        "host": host,
        "privateIP": instance.private_ip or "",
        "port": SSH_PORT,
        "username": username,
        "ssh": f"ssh -p {SSH_PORT} {username}@{target}" if target else "",
    }


def secret_manifest(namespace: str, name: str, owner: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "barrack-operator"},
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": False}],
        },
        "stringData": data,
    }
