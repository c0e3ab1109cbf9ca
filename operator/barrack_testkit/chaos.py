"""Seeded chaos against a running operator: a random workload of Barrack objects changed with
kubectl in rounds, while the operator is SIGKILLed and restarted and the simulator injects faults;
after each round, a wait for convergence and an audit of Barrack against the objects.

The reliability tests run a few rounds; ``hack/soak.py`` runs many. Every figure they report comes
from here (:class:`Tally`), so a test and the soak judge a run the same way:

- duplicates: Barrack resources created under a name beyond the first (names are unique per run,
  so a second creation under one name is a repeated create, or a lost resource made again);
- leaks: Barrack resources that no object owns, other than volumes let go with ``Retain``;
- lost volumes: a volume an object still wants whose Barrack volume changed id or is gone, or a
  retained volume that is gone;
- unconverged: objects not as declared (Ready, Synced, attached where asked, in the asked power
  state, observed at their generation), or not gone after a delete, when a round times out.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from barrack_operator.devcluster.cluster import ControlPlane
from barrack_testkit.stack import OperatorProcess, SimProcess

RESOURCES = "barrackvolumes,barrackinstances,barrackfirewalls,barracksshkeys"
KIND_TO_INVENTORY = {
    "BarrackVolume": "volumes",
    "BarrackInstance": "instances",
    "BarrackFirewall": "firewalls",
    "BarrackSSHKey": "ssh_keys",
}
API_VERSION = "barrack.ai/v1alpha1"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNoYW9zLWtleQ== chaos@example"
HOSTS = ("host-0", "host-1")


@dataclass
class Tally:
    """What a chaos run did and found; the soak prints it (without ``problems``) as JSON."""

    rounds: int = 0
    objects: int = 0
    kills: int = 0
    faults_injected: int = 0
    duplicates: int = 0
    leaks: int = 0
    lost_volumes: int = 0
    unconverged: int = 0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "problems"}

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.leaks or self.lost_volumes or self.unconverged)


@dataclass(frozen=True)
class Faults:
    """What the simulator injects during a run. ``throttle_share`` of the rounds run with Barrack's
    rate limit cut to ``throttle_rps`` (a burst of 429s); ``malformed_share`` of the rounds have
    one kind's listing answer malformed replies (not JSON, or the wrong shape) for a while; creates
    take ``slow_create_seconds`` longer at Barrack (so deletions meet creates in flight)."""

    error_rate: float = 0.0
    commit_then_fail_rate: float = 0.0
    latency_seconds: float = 0.0
    throttle_share: float = 0.0
    throttle_rps: float = 3.0
    malformed_share: float = 0.0
    slow_create_seconds: float = 0.0

    @property
    def any(self) -> bool:
        return bool(
            self.error_rate
            or self.commit_then_fail_rate
            or self.latency_seconds
            or self.throttle_share
            or self.malformed_share
            or self.slow_create_seconds
        )

    def sim_settings(self, throttled: bool, malformed: dict[str, str] | None = None) -> dict[str, Any]:
        slow = self.slow_create_seconds
        return {
            "error_rate": self.error_rate,
            "commit_then_fail_rate": self.commit_then_fail_rate,
            "latency_seconds": self.latency_seconds,
            "rate_limit_rps": self.throttle_rps if throttled else 0.0,
            "malformed": malformed or {},
            "route_latency": {"create_volume": slow, "create_instance": slow} if slow else {},
        }


@dataclass
class VolumeWant:
    host: str | None
    retain: bool
    size: int = 100


def _manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _condition(obj: dict[str, Any], type_: str) -> str | None:
    conditions = (obj.get("status") or {}).get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == type_), None)


class Workload:
    """The declared world of one namespace, changed at random a few objects at a time. Every
    change is one Barrack's rules allow to converge: a volume is detached or deleted from an
    attached host only together with stopping that host."""

    def __init__(self, plane: ControlPlane, namespace: str, image_id: str, rng: random.Random) -> None:
        self.plane = plane
        self.namespace = namespace
        self.image_id = image_id
        self.rng = rng
        self.hosts: dict[str, str] = {}
        self.volumes: dict[str, VolumeWant] = {}
        self.vms: set[str] = set()
        self.firewalls: set[str] = set()
        self.keys: set[str] = set()
        self.deleting: set[tuple[str, str]] = set()
        self.first_ids: dict[str, str] = {}
        self.retained_names: set[str] = set()
        self.retained: dict[str, str] = {}
        self._leaked: set[str] = set()
        self._duplicated: dict[str, int] = {}
        self._lost_seen: set[tuple[str, str]] = set()
        self.created = 0
        self._serial = 0

    # kubectl ---------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        return self.plane.kubectl("-n", self.namespace, *args, input_text=input_text).stdout

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        if manifests:
            self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))

    def delete(self, resource: str, names: list[str]) -> None:
        if names:
            self.kubectl("delete", resource, *names, "--wait=false")

    def objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        items = json.loads(self.kubectl("get", RESOURCES, "-o", "json"))["items"]
        return {(o["kind"], o["metadata"]["name"]): o for o in items}

    # The declared objects -------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        self._serial += 1
        self.created += 1
        return f"{prefix}-{self._serial}"

    def _instance(self, name: str, gpu: str, power: str) -> dict[str, Any]:
        spec = {
            "region": "US-1",
            "gpuModel": gpu,
            "imageId": self.image_id,
            "sshKeyRefs": [{"name": "ops-key"}],
            "powerState": power,
        }
        return _manifest("BarrackInstance", name, spec)

    def _volume(self, name: str, want: VolumeWant) -> dict[str, Any]:
        spec: dict[str, Any] = {"region": "US-1", "sizeGB": want.size}
        if want.host:
            spec["instanceRef"] = {"name": want.host}
        if want.retain:
            spec["deletionPolicy"] = "Retain"
        return _manifest("BarrackVolume", name, spec)

    def _firewall(self, name: str) -> dict[str, Any]:
        port = self.rng.randrange(1024, 65000)
        rule = {"direction": "ingress", "protocol": "tcp", "portRangeMin": port, "portRangeMax": port}
        return _manifest("BarrackFirewall", name, {"region": "US-1", "rules": [rule]})

    def setup(self) -> None:
        """An SSH key and two hosts that volumes attach to; they live for the whole run."""
        self.created += 1 + len(HOSTS)
        self.hosts = dict.fromkeys(HOSTS, "Running")
        key = _manifest("BarrackSSHKey", "ops-key", {"publicKey": SSH_PUBLIC_KEY})
        self.apply([key, *(self._instance(h, "A40", "Running") for h in HOSTS)])

    # One round of changes -------------------------------------------------------------------------

    def change(self, count: int) -> list[str]:
        """Make ``count`` random changes (applied together); returns what was done, for the log."""
        stopping: set[str] = set()
        actions = [
            self._create_volume,
            self._create_volume,
            self._attach,
            self._detach,
            self._delete_volume,
            self._resize,
            self._power,
            self._create_vm,
            self._delete_vm,
            self._create_firewall,
            self._delete_firewall,
            self._create_key,
            self._delete_key,
            self._create_then_delete,
        ]
        done: list[str] = []
        for _ in range(20 * count):  # some actions have nothing to act on; pick again
            line = self.rng.choice(actions)(stopping)
            if line:
                done.append(line)
            if len(done) == count:
                break
        for host in stopping:
            self.hosts[host] = "Stopped"
        manifests = [self._instance(h, "A40", p) for h, p in self.hosts.items()]
        manifests += [self._volume(n, w) for n, w in self.volumes.items()]
        self.apply(manifests)
        return done

    def _create_volume(self, stopping: set[str]) -> str:
        host = self.rng.choice([None, *HOSTS])
        name = self.add_volume(host, retain=self.rng.random() < 0.2, size=self.rng.choice([100, 200]))
        return f"create {name} on {host}" if host else f"create {name}"

    def add_volume(self, host: str | None = None, *, retain: bool = False, size: int = 100) -> str:
        """Declare and apply a new volume at once (a later change in the round may delete it)."""
        name = self._name("vol")
        self.volumes[name] = VolumeWant(host, retain=retain, size=size)
        self.apply([self._volume(name, self.volumes[name])])
        return name

    def _attach(self, stopping: set[str]) -> str | None:
        free = [n for n, w in self.volumes.items() if w.host is None]
        if not free:
            return None
        name, host = self.rng.choice(free), self.rng.choice(HOSTS)
        self.volumes[name].host = host
        return f"attach {name} to {host}"

    def _detach(self, stopping: set[str]) -> str | None:
        attached = [n for n, w in self.volumes.items() if w.host is not None]
        if not attached:
            return None
        name = self.rng.choice(attached)
        host = self.volumes[name].host
        assert host is not None
        stopping.add(host)
        self.volumes[name].host = None
        return f"detach {name} from {host} (stopping it)"

    def _delete_volume(self, stopping: set[str]) -> str | None:
        if not self.volumes:
            return None
        name = self.rng.choice(sorted(self.volumes))
        want = self.volumes.pop(name)
        if want.host:
            stopping.add(want.host)
        if want.retain:
            self.retained_names.add(name)
        self.deleting.add(("BarrackVolume", name))
        self.delete("barrackvolume", [name])
        return f"delete {name}" + (" (Retain)" if want.retain else "")

    def _resize(self, stopping: set[str]) -> str | None:
        if not self.volumes:
            return None
        name = self.rng.choice(sorted(self.volumes))
        self.volumes[name].size += 100
        return f"resize {name} to {self.volumes[name].size}"

    def _power(self, stopping: set[str]) -> str:
        host = self.rng.choice(HOSTS)
        self.hosts[host] = "Stopped" if self.hosts[host] == "Running" else "Running"
        return f"{host} {self.hosts[host]}"

    def _create_vm(self, stopping: set[str]) -> str:
        name = self._name("vm")
        self.vms.add(name)
        self.apply([self._instance(name, "RTX-A6000", self.rng.choice(["Running", "Stopped"]))])
        return f"create {name}"

    def _delete_vm(self, stopping: set[str]) -> str | None:
        return self._delete_one("BarrackInstance", self.vms)

    def _create_firewall(self, stopping: set[str]) -> str:
        name = self._name("fw")
        self.firewalls.add(name)
        self.apply([self._firewall(name)])
        return f"create {name}"

    def _delete_firewall(self, stopping: set[str]) -> str | None:
        return self._delete_one("BarrackFirewall", self.firewalls)

    def _create_key(self, stopping: set[str]) -> str:
        name = self._name("key")
        self.keys.add(name)
        self.apply([_manifest("BarrackSSHKey", name, {"publicKey": SSH_PUBLIC_KEY})])
        return f"create {name}"

    def _delete_key(self, stopping: set[str]) -> str | None:
        return self._delete_one("BarrackSSHKey", self.keys)

    def _create_then_delete(self, stopping: set[str]) -> str:
        """An object deleted right after it is applied: its create waits or flies meanwhile."""
        name = self._name("flash")
        if self.rng.random() < 0.5:
            kind, manifest = "BarrackVolume", self._volume(name, VolumeWant(None, retain=False))
        else:
            kind, manifest = "BarrackInstance", self._instance(name, "RTX-A6000", "Running")
        self.apply([manifest])
        time.sleep(self.rng.uniform(0.0, 1.0))
        self.deleting.add((kind, name))
        self.delete(kind.lower(), [name])
        return f"create {name} and delete it at once"

    def _delete_one(self, kind: str, names: set[str]) -> str | None:
        if not names:
            return None
        name = self.rng.choice(sorted(names))
        names.discard(name)
        self.deleting.add((kind, name))
        self.delete(kind.lower(), [name])
        return f"delete {name}"

    def delete_all(self) -> None:
        """Delete every object (the end of a run); Retain volumes stay on Barrack."""
        objects = self.objects()
        for kind, name in objects:
            self.deleting.add((kind, name))
        self.retained_names.update(n for n, w in self.volumes.items() if w.retain)
        self.hosts, self.volumes = {}, {}
        self.vms, self.firewalls, self.keys = set(), set(), set()
        self.kubectl("delete", RESOURCES, "--all", "--wait=false")

    # Convergence ----------------------------------------------------------------------------------

    def wanted(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every object that should exist, with what converged means for it."""
        want: dict[tuple[str, str], dict[str, Any]] = {}
        if self.hosts:
            want[("BarrackSSHKey", "ops-key")] = {}
        for host, power in self.hosts.items():
            want[("BarrackInstance", host)] = {"power": power}
        for vm in self.vms:
            want[("BarrackInstance", vm)] = {}
        for name, volume in self.volumes.items():
            want[("BarrackVolume", name)] = {"host": volume.host, "size": volume.size}
        want.update({("BarrackFirewall", n): {} for n in self.firewalls})
        want.update({("BarrackSSHKey", n): {} for n in self.keys})
        return want

    def unconverged(self, inventory: dict[str, Any]) -> list[str]:
        """What is not yet as declared, in Kubernetes or on Barrack; empty when all has converged."""
        objects = self.objects()
        problems = [f"{k}/{n} still exists after its delete" for k, n in self.deleting if (k, n) in objects]
        on_barrack = {r["id"]: r for key in KIND_TO_INVENTORY.values() for r in inventory[key]}
        for (kind, name), want in self.wanted().items():
            obj = objects.get((kind, name))
            problem = "missing" if obj is None else self._judge(obj, want, objects, on_barrack)
            if problem:
                problems.append(f"{kind}/{name}: {problem}")
        return problems

    def _judge(
        self,
        obj: dict[str, Any],
        want: dict[str, Any],
        objects: dict[tuple[str, str], dict[str, Any]],
        on_barrack: dict[str, dict[str, Any]],
    ) -> str | None:
        status = obj.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        for type_ in ("Ready", "Synced"):
            if conditions.get(type_, {}).get("status") != "True":
                c = conditions.get(type_, {})
                return f"{type_}={c.get('status')} {c.get('reason')}: {c.get('message')}"
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return "not observed at its latest generation"
        barrack = on_barrack.get(status.get("id") or "")
        if barrack is None:
            return f"its Barrack resource {status.get('id')} does not exist"
        if "power" in want:
            state = {"Running": "ACTIVE", "Stopped": "SHUTOFF"}[want["power"]]
            if status.get("powerState") != want["power"] or barrack["status"] != state:
                return f"powerState {status.get('powerState')} ({barrack['status']}), wants {want['power']}"
        if "host" in want:
            host = want["host"]
            host_status = (objects.get(("BarrackInstance", host)) or {}).get("status") or {} if host else {}
            host_id = host_status.get("id")
            settled = "ATTACHED" if host else "AVAILABLE"
            if barrack["status"].upper() != settled:
                return f"{barrack['status']} on Barrack, wants {settled}"
            attached = (status.get("attachedInstanceId"), barrack["instance_id"], _condition(obj, "Attached"))
            if attached != (host_id, host_id, str(bool(host))):
                return f"attached {attached}, wants {host} ({host_id})"
            if (status.get("sizeGB"), barrack["size_gb"]) != (want["size"], want["size"]):
                return f"sizeGB {status.get('sizeGB')} ({barrack['size_gb']}), wants {want['size']}"
        return None

    # The audit ------------------------------------------------------------------------------------

    def audit(self, inventory: dict[str, Any], created: list[dict[str, str]], tally: Tally) -> None:
        """Compare Barrack with the objects and add what is wrong to ``tally``, each finding once
        however many audits see it: duplicates, leaks, lost volumes."""
        objects = self.objects()
        live_ids = {(o.get("status") or {}).get("id") for o in objects.values()} - {None}
        on_barrack = {key: {r["id"]: r for r in inventory[key]} for key in KIND_TO_INVENTORY.values()}
        for (kind, name), obj in objects.items():
            current = (obj.get("status") or {}).get("id")
            if kind == "BarrackVolume" and current:
                first = self.first_ids.setdefault(name, current)
                if first != current:
                    self._lost(tally, name, first, f"volume {name} was {first} and is now {current}")
                    self.first_ids[name] = current
        for name in self.retained_names - set(self.retained):
            # Let go with Retain: the volume it had (or, if its id was never seen, the one of its name).
            by_name = [i for i, v in on_barrack["volumes"].items() if v["name"] == name]
            if name in self.first_ids or by_name:
                self.retained[name] = self.first_ids.get(name) or by_name[0]
        for name, volume_id in self.first_ids.items():
            if ("BarrackVolume", name) in objects and volume_id not in on_barrack["volumes"]:
                self._lost(
                    tally, name, volume_id, f"volume {name} ({volume_id}) is gone from Barrack while wanted"
                )
        for name, volume_id in self.retained.items():
            if volume_id not in on_barrack["volumes"]:
                self._lost(
                    tally, name, volume_id, f"retained volume {name} ({volume_id}) is gone from Barrack"
                )
        kept = set(self.retained.values())
        for key, resources in on_barrack.items():
            for resource_id, resource in resources.items():
                if resource_id not in live_ids | kept and resource_id not in self._leaked:
                    self._leaked.add(resource_id)
                    tally.leaks += 1
                    tally.problems.append(
                        f"{key} {resource_id} ({resource.get('name')}) is owned by no object"
                    )
        for name, count in Counter(entry["name"] for entry in created).items():
            extra = count - 1 - self._duplicated.get(name, 0)
            if extra > 0:
                self._duplicated[name] = count - 1
                tally.duplicates += extra
                tally.problems.append(f"{name} was created {count} times on Barrack")

    def _lost(self, tally: Tally, name: str, volume_id: str, problem: str) -> None:
        if (name, volume_id) not in self._lost_seen:
            self._lost_seen.add((name, volume_id))
            tally.lost_volumes += 1
            tally.problems.append(problem)


class Chaos:
    """Rounds of changes, SIGKILLs of the operator, simulator faults and any other ``disrupt``ion
    (given the run's random source, it returns what it did), each round ending in a wait for
    convergence and an audit."""

    def __init__(
        self,
        plane: ControlPlane,
        namespace: str,
        sim: SimProcess,
        operator: OperatorProcess,
        *,
        seed: int,
        kills: bool = True,
        faults: Faults = Faults(),
        changes_per_round: int = 3,
        max_kill_delay: float = 2.5,
        converge_timeout: float = 120.0,
        disrupt: Callable[[random.Random], str] | None = None,
        log: Callable[[str], Any] = print,
    ) -> None:
        self.rng = random.Random(seed)
        self.sim = sim
        self.operator = operator
        self.kills = kills
        self.faults = faults
        self.changes_per_round = changes_per_round
        self.max_kill_delay = max_kill_delay
        self.converge_timeout = converge_timeout
        self.disrupt = disrupt
        self.log = log
        self.tally = Tally()
        self.workload = Workload(plane, namespace, sim.image(), self.rng)
        self.throttled_seconds = 0.0
        self.malformed_rounds = 0
        if faults.any:
            sim.admin("faults", {"seed": seed})

    def start(self) -> None:
        self.workload.setup()
        self.converge("setup")

    def round(self) -> None:
        self.tally.rounds += 1
        throttled = self.rng.random() < self.faults.throttle_share
        malformed = None
        if self.rng.random() < self.faults.malformed_share:
            listing = self.rng.choice(["list_volumes", "list_instances", "list_firewalls", "list_ssh_keys"])
            malformed = {listing: self.rng.choice(["json", "shape"])}
            self.malformed_rounds += 1
        if self.faults.any:
            self.sim.admin("faults", self.faults.sim_settings(throttled, malformed))
        started = time.monotonic()
        done = self.workload.change(self.changes_per_round)
        if self.kills:
            self._kill_and_restart()
            if self.rng.random() < 0.3:  # again, while it starts or catches up
                self._kill_and_restart()
        if self.disrupt is not None:
            done.append(self.disrupt(self.rng))
        if throttled or malformed:
            time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
            self.sim.admin("faults", self.faults.sim_settings(False))
            if throttled:
                self.throttled_seconds += time.monotonic() - started
        self.converge(f"round {self.tally.rounds}: " + "; ".join(done))

    def _kill_and_restart(self) -> None:
        time.sleep(self.rng.uniform(0.0, self.max_kill_delay))
        self.operator.kill()
        self.tally.kills += 1
        time.sleep(self.rng.uniform(0.0, 0.5))
        self.operator.start()

    def converge(self, what: str) -> None:
        deadline = time.monotonic() + self.converge_timeout
        started = time.monotonic()
        pending = self.workload.unconverged(self.sim.inventory())
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            pending = self.workload.unconverged(self.sim.inventory())
        if pending:
            self.tally.unconverged += len(pending)
            self.tally.problems += [f"{what}: not converged: {p}" for p in pending]
        self.workload.audit(self.sim.inventory(), self.sim.admin("created"), self.tally)
        self.tally.objects = self.workload.created
        self.tally.faults_injected = sum(self.sim.admin("faults")["injected"].values())
        self.log(
            f"{what} -> {'converged' if not pending else 'NOT converged'} in {time.monotonic() - started:.1f}s"
        )

    def finish(self) -> Tally:
        """Delete everything (with the faults still on) and audit once more: only retained
        volumes may stay on Barrack."""
        self.workload.delete_all()
        self.converge("delete all")
        return self.tally

    def run(self, rounds: int | None = None, minutes: float | None = None) -> Tally:
        """Set up, then rounds until ``rounds`` are done or ``minutes`` have passed, then finish."""
        self.start()
        deadline = time.monotonic() + 60 * minutes if minutes else None
        while (rounds is None or self.tally.rounds < rounds) and (
            deadline is None or time.monotonic() < deadline
        ):
            self.round()
        return self.finish()
