"""What `barrack-operator import` writes: one adopting manifest per unmanaged resource, valid and
unique names, references between the imported resources, Barrack's values in the spec."""

from __future__ import annotations

from barrack_operator.barrack import models as m
from barrack_operator.importer import Account, kubernetes_name, plan_import
from tests.unit.conftest import SSH_PUBLIC_KEY


def account() -> Account:
    key = m.SSHKey(id="BRK-1K", name="Ops Key", public_key=SSH_PUBLIC_KEY)
    web = m.VMInstance(
        id="BRK-1D", name="web 1", status="SHUTOFF", region="US-1", gpu_model="A40", gpu_count=1,
        image_id="BRK-1I", ssh_key_ids=["BRK-1K"],
    )  # fmt: skip
    booted = m.VMInstance(
        id="BRK-2D", name="from-disk", status="ACTIVE", region="US-1", gpu_model="A40", gpu_count=2,
        boot_volume_id="BRK-9V", ssh_key_ids=["BRK-1K"], public_ip="1.2.3.4",
    )  # fmt: skip
    data = m.Volume(id="BRK-1V", name="data", status="ATTACHED", region="US-1", size_gb=500,
                    volume_type="NVMe", instance_id="BRK-1D")  # fmt: skip
    boot = m.Volume(id="BRK-9V", name="os disk", status="ATTACHED", region="US-1", size_gb=100,
                    volume_type="NVMe", bootable=True, image_id="BRK-1I", instance_id="BRK-2D")  # fmt: skip
    managed = m.Volume(
        id="BRK-5V", name="already", status="AVAILABLE", region="US-1", size_gb=100, volume_type="HDD"
    )
    fw = m.Firewall(id="BRK-1F", name="web", status="SUCCESS", region="US-1",
                    attachments=[m.FirewallAttachment(instance_id="BRK-2D", status="SUCCESS")])  # fmt: skip
    return Account(volumes=[data, boot, managed], instances=[web, booted], firewalls=[fw], ssh_keys=[key])


def test_names_are_valid_and_unique() -> None:
    taken: set[str] = {"data"}
    assert kubernetes_name("Data", taken) == "data-2"
    assert kubernetes_name("web 1 / GPU", taken) == "web-1-gpu"
    assert kubernetes_name("___", taken) == "resource"
    assert len(kubernetes_name("x" * 80, taken)) == 63


def test_every_unmanaged_resource_is_adopted_with_references_resolved() -> None:
    plan = plan_import(account(), {"BRK-5V": "already"}, taken_names={"already"})
    assert plan.skipped == []
    manifests = plan.manifests
    by_name = {m["metadata"]["name"]: m for m in manifests}
    assert sorted(by_name) == ["data", "from-disk", "ops-key", "os-disk", "web", "web-1"]
    assert all(m["spec"]["adoptId"] and m["spec"]["name"] for m in manifests)
    web = by_name["web-1"]["spec"]
    assert (
        web["sshKeyRefs"] == [{"name": "ops-key"}]
        and web["powerState"] == "Stopped"
        and web["imageId"] == "BRK-1I"
    )
    assert "publicIP" not in web  # read from a running instance only
    assert by_name["from-disk"]["spec"]["bootVolumeRef"] == {"name": "os-disk"}
    assert by_name["from-disk"]["spec"]["publicIP"] is True
    assert by_name["data"]["spec"]["instanceRef"] == {"name": "web-1"}
    assert by_name["os-disk"]["spec"]["bootable"] is True and "instanceRef" not in by_name["os-disk"]["spec"]
    assert by_name["web"]["spec"]["instanceRefs"] == [{"name": "from-disk"}]
    assert by_name["web"]["kind"] == "BarrackFirewall"


def test_observe_marks_every_object_observe_only() -> None:
    assert {m["spec"]["managementPolicy"] for m in plan_import(account(), {}, observe=True).manifests} == {
        "Observe"
    }


def test_what_cannot_be_stated_here_is_left_out_and_said() -> None:
    # The SSH key is managed in another namespace (no name here): the instances that use it cannot
    # name it, and the firewall over one of them would detach it if adopted here without it.
    plan = plan_import(account(), {"BRK-1K": None})
    kinds = sorted(m["kind"] for m in plan.manifests)
    assert kinds == ["BarrackVolume"] * 3, kinds  # data, the boot disk, and one no object manages
    assert len(plan.skipped) == 3 and all("namespace" in reason for reason in plan.skipped)
    data = next(m for m in plan.manifests if m["metadata"]["name"] == "data")
    assert data["spec"]["instanceId"] == "BRK-1D"  # the instance was left out: referred to by id


def test_snapshots_and_images_are_imported_with_their_sources_as_references() -> None:
    """A snapshot of an imported instance names it; an image of that snapshot names the snapshot;
    an instance booted from that image names the image (its name reserved before the instance);
    a source that is not imported is named by id; what is not made yet is left out, saying why."""
    base = account()
    nightly = m.Snapshot(id="BRK-1S", name="Nightly 1", instance_id="BRK-1D", region="US-1", status="SUCCESS",
                         description="before the upgrade")  # fmt: skip
    foreign = m.Snapshot(id="BRK-2S", name="theirs", instance_id="BRK-77D", region="US-1", status="SUCCESS")
    making = m.Snapshot(id="BRK-3S", name="making", instance_id="BRK-1D", region="US-1", status="CREATING")
    golden = m.CustomImage(
        id="BRK-1M", name="Golden", snapshot_id="BRK-1S", region="US-1", status="AVAILABLE"
    )
    from_image = m.VMInstance(id="BRK-3D", name="cloned", status="ACTIVE", region="US-1", gpu_model="A40",
                              gpu_count=1, image_id="BRK-1M", ssh_key_ids=["BRK-1K"])  # fmt: skip
    plan = plan_import(
        Account(
            volumes=base.volumes,
            instances=[*base.instances, from_image],
            firewalls=base.firewalls,
            ssh_keys=base.ssh_keys,
            snapshots=[nightly, foreign, making],
            images=[golden],
        ),
        {"BRK-5V": "already"},
        observe=True,
    )
    by_id = {mf["spec"]["adoptId"]: mf for mf in plan.manifests}
    assert by_id["BRK-1S"]["kind"] == "BarrackSnapshot" and by_id["BRK-1S"]["metadata"]["name"] == "nightly-1"
    assert by_id["BRK-1S"]["spec"]["instanceRef"] == {"name": by_id["BRK-1D"]["metadata"]["name"]}
    assert by_id["BRK-1S"]["spec"]["description"] == "before the upgrade"
    assert by_id["BRK-2S"]["spec"]["instanceId"] == "BRK-77D" and "instanceRef" not in by_id["BRK-2S"]["spec"]
    assert by_id["BRK-1M"]["kind"] == "BarrackImage" and by_id["BRK-1M"]["spec"]["snapshotRef"] == {
        "name": "nightly-1"
    }
    assert (
        by_id["BRK-3D"]["spec"]["customImageRef"] == {"name": "golden"}
        and "imageId" not in by_id["BRK-3D"]["spec"]
    )
    assert all(mf["spec"]["managementPolicy"] == "Observe" for mf in plan.manifests)
    assert "BRK-3S" not in by_id and any("making" in s and "CREATING" in s for s in plan.skipped)


def test_startup_scripts_are_imported_and_instances_name_them() -> None:
    base = account()
    setup = m.Script(id="BRK-1T", name="Setup Drivers", content="#!/bin/sh\necho hi\n", description="drivers")
    web = base.instances[0].model_copy(update={"startup_script_id": "BRK-1T"})
    other = base.instances[1].model_copy(update={"startup_script_id": "BRK-9T"})  # a script not listed
    plan = plan_import(
        Account(
            volumes=base.volumes,
            instances=[web, other],
            firewalls=base.firewalls,
            ssh_keys=base.ssh_keys,
            scripts=[setup],
        ),
        {"BRK-5V": "already"},
    )
    by_id = {mf["spec"]["adoptId"]: mf for mf in plan.manifests}
    assert (
        by_id["BRK-1T"]["kind"] == "BarrackStartupScript"
        and by_id["BRK-1T"]["metadata"]["name"] == "setup-drivers"
    )
    assert by_id["BRK-1T"]["spec"]["content"] == "#!/bin/sh\necho hi\n"
    assert by_id["BRK-1T"]["spec"]["description"] == "drivers"
    assert by_id["BRK-1D"]["spec"]["startupScriptRef"] == {"name": "setup-drivers"}
    assert by_id["BRK-2D"]["spec"]["startupScript"] == "BRK-9T"
