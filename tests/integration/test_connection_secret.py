"""An instance writes its connection Secret only where it controls it (issue 20, item 9): a Secret of
that name that another app keeps, or that another object controls, is left untouched, and the
instance reads Synced=False SecretConflict naming it; once the name is free, the instance makes
its own Secret, controlled by it, which the garbage collector deletes with it."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key, wait_for

pytestmark = pytest.mark.integration


def secret(name: str, **meta: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, **meta},
            "stringData": {"password": "theirs"}}  # fmt: skip


def test_a_secret_the_instance_does_not_control_is_never_written(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(secret("app-creds"))  # another app's credentials, of the name the instance asks for
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-app"}})
    other_uid = (kube.get("configmap", "other-app") or {})["metadata"]["uid"]
    other_owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "other-app",
        "uid": other_uid,
        "controller": True,
    }
    kube.apply(secret("claimed-creds", ownerReferences=[other_owner]))  # controlled by another object
    before = {name: kube.get("secret", name) for name in ("app-creds", "claimed-creds")}
    kube.apply(ssh_key())
    kube.apply(instance("web-1", sim.image(), writeConnectionSecretToRef={"name": "app-creds"}))
    kube.apply(instance("web-2", sim.image(), writeConnectionSecretToRef={"name": "claimed-creds"}))
    for name, target in (("web-1", "app-creds"), ("web-2", "claimed-creds")):
        conflict = kube.wait_condition("binst", name, "Synced", "False", reason="SecretConflict", timeout=60)
        assert f"Secret {kube.namespace}/{target}" in conflict["message"]
        assert "left untouched" in conflict["message"]
        assert any(e["reason"] == "SecretConflict" and e["type"] == "Warning" for e in kube.events(name))
    for name, was in before.items():
        now = kube.get("secret", name) or {}
        assert now["metadata"]["resourceVersion"] == was["metadata"]["resourceVersion"], f"{name} was written"  # type: ignore[index]
        assert now["metadata"].get("ownerReferences") == was["metadata"].get("ownerReferences")  # type: ignore[index]
        assert set(now["data"]) == {"password"}

    # The name freed, the instance makes its own Secret, controlled by it.
    kube.run("delete", "secret", "app-creds")
    kube.wait_condition("binst", "web-1", "Synced", "True", timeout=60)
    made = wait_for(lambda: kube.get("secret", "app-creds"), 30, what="the instance's own Secret")
    assert set(made["data"]) == {"host", "privateIP", "port", "username", "ssh"}
    uid = (kube.get("binst", "web-1") or {})["metadata"]["uid"]
    assert [(r["uid"], r.get("controller")) for r in made["metadata"]["ownerReferences"]] == [(uid, True)]
    # web-2 still may not write into the Secret another object controls.
    assert kube.condition("binst", "web-2", "Synced")["reason"] == "SecretConflict"  # type: ignore[index]

    # The instance's own Secret goes with it (the garbage collector follows its ownerReference);
    # the Secrets it never controlled stay.
    kube.run("delete", "binst", "web-1", "web-2", "--timeout=90s")
    wait_for(lambda: kube.get("secret", "app-creds") is None, 60, what="the instance's Secret to go with it")
    assert kube.get("secret", "claimed-creds") is not None
