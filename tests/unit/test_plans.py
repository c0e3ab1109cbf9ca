"""Pure planning pieces of the reconcilers."""

from __future__ import annotations

from barrack_operator.barrack import models as m
from barrack_operator.resources.instance import NEXT_POWER_ACTION
from barrack_operator.resources.rules import security_rule_plan
from barrack_operator.resources.specs import RuleSpec
from barrack_operator.resources.volume import detach_blocked_reason


def _volume(**kw: object) -> m.Volume:
    fields = {
        "id": "BRK-1V",
        "name": "data",
        "status": "ATTACHED",
        "region": "US-1",
        "size_gb": 100,
        "volume_type": "NVMe",
    }
    return m.Volume(**{**fields, **kw})  # type: ignore[arg-type]


def _instance(status: str) -> m.VMInstance:
    return m.VMInstance(
        id="BRK-123456D", name="web-1", status=status, region="US-1", gpu_model="A40", gpu_count=1
    )


def test_detach_blocked_reason_names_instance_state_and_the_next_step_for_who_manages_it() -> None:
    volume = _volume(instance_id="BRK-123456D")
    assert detach_blocked_reason(volume, _instance("ACTIVE"), "web-1") == (
        "detach of volume BRK-1V needs instance web-1 (BRK-123456D) in SHUTOFF, it is ACTIVE: "
        "set spec.powerState: Stopped on BarrackInstance web-1"
    )
    hibernated = detach_blocked_reason(volume, _instance("HIBERNATED"), "web-1")
    assert hibernated is not None and "must be restored first" in hibernated
    assert "set spec.powerState: Stopped on BarrackInstance web-1" in hibernated
    assert detach_blocked_reason(volume, _instance("ACTIVE"), None) == (
        "detach of volume BRK-1V needs instance web-1 (BRK-123456D) in SHUTOFF, it is ACTIVE: "
        "stop instance BRK-123456D on Barrack (no BarrackInstance here manages it)"
    )
    assert detach_blocked_reason(volume, _instance("SHUTOFF"), "web-1") is None


def test_boot_volume_detach_is_always_blocked() -> None:
    why = detach_blocked_reason(_volume(instance_id="BRK-123456D", bootable=True), _instance("SHUTOFF"))
    assert why is not None and "boot volumes stay attached" in why


def test_security_rules_reconcile_as_a_set() -> None:
    ssh = RuleSpec(direction="ingress", protocol="tcp", portRangeMin=22, portRangeMax=22)
    icmp = RuleSpec(direction="ingress", protocol="icmp")
    actual = [
        m.FirewallRule(id="r1", direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22),
        m.FirewallRule(id="r2", direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22),
        m.FirewallRule(id="r3", direction="egress", protocol="udp", port_range_min=53, port_range_max=53),
    ]
    add, remove = security_rule_plan([ssh, icmp], actual)
    assert [r.protocol for r in add] == ["icmp"]
    assert sorted(remove) == ["r2", "r3"]  # the duplicate and the unwanted rule


def test_every_power_path_reaches_its_target() -> None:
    s = m.InstanceState
    settle = {"stop": s.SHUTOFF, "start": s.ACTIVE, "hibernate": s.HIBERNATED, "restore": s.ACTIVE}
    for start in (s.ACTIVE, s.SHUTOFF, s.HIBERNATED):
        for target in (s.ACTIVE, s.SHUTOFF, s.HIBERNATED):
            state, steps = start, 0
            while state != target and steps < 3:
                state, steps = settle[NEXT_POWER_ACTION[(state, target)]], steps + 1
            assert state == target, f"{start} -> {target}"
