"""The simulator's startup scripts follow contract section 8: names unique and 1 to 50
characters, content at most 64 KiB, at most 100 scripts, updates change what later instances run,
and a script in use by an instance not yet deleted cannot be deleted."""

from __future__ import annotations

import pytest

from barrack_operator.barrack import requests as rq
from barrack_sim.account import Account, SimConfig
from barrack_sim.errors import Conflict, Invalid, Missing
from barrack_sim.scripts import MAX_SCRIPTS
from tests.unit.conftest import SSH_PUBLIC_KEY


def _account() -> Account:
    return Account(SimConfig(transition_seconds=1.0))


def test_scripts_are_checked_updated_and_kept_while_in_use() -> None:
    account = _account()
    script = account.scripts.create(
        rq.CreateScriptRequest(name="setup", content="echo 1", description="first")
    )
    assert script.id.endswith("T") and script.content == "echo 1"
    with pytest.raises(Conflict):
        account.scripts.create(rq.CreateScriptRequest(name="setup", content="x"))
    with pytest.raises(Invalid):
        account.scripts.create(rq.CreateScriptRequest(name="big", content="x" * (64 * 1024 + 1)))
    with pytest.raises(Invalid):
        account.scripts.create(rq.CreateScriptRequest(name="n" * 51, content="x"))
    updated = account.scripts.update(script.id, rq.UpdateScriptRequest(content="echo 2"))
    assert updated.content == "echo 2" and updated.description == "first"

    key = account.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=SSH_PUBLIC_KEY))
    image = next(i for i in account.images.values() if i.region == "US-1")
    made = account.create_instance(rq.DeploymentRequest(name="gpu", region="US-1", gpu_model="A40", gpu_count=1,
                                   image_id=image.id, ssh_key_ids=[key.id], startup_script_id=script.id))  # fmt: skip
    assert made.startup_script_id == script.id
    with pytest.raises(Conflict) as refused:
        account.scripts.delete(script.id, account.instances.values())
    assert refused.value.error_code == "script_in_use" and made.id in refused.value.message
    account.instances.clear()
    account.scripts.delete(script.id, account.instances.values())
    with pytest.raises(Missing):
        account.scripts.get(script.id)
    with pytest.raises(Missing):
        account.create_instance(rq.DeploymentRequest(name="gpu2", region="US-1", gpu_model="A40", gpu_count=1,
                                image_id=image.id, ssh_key_ids=[key.id], startup_script_id=script.id))  # fmt: skip


def test_an_account_holds_at_most_a_hundred_scripts() -> None:
    account = _account()
    for n in range(MAX_SCRIPTS):
        account.scripts.create(rq.CreateScriptRequest(name=f"s{n}", content="x"))
    with pytest.raises(Conflict):
        account.scripts.create(rq.CreateScriptRequest(name="one-more", content="x"))
