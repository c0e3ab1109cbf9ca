"""The object model every kind's reconcile shares: the object as reconcile sees it
(:class:`ObjectView`), the outcome it returns (:class:`Outcome`, its events), what the operator
remembers between passes (:class:`Memory`), the context it acts through (:class:`Context`), the
keys references and Barrack ids are watched by, and the exceptions a pass may end with.

Reconcile is level-triggered: observe (the shared inventory, the referents), plan the smallest set
of calls, act, and return an :class:`Outcome` that the engine writes to status and events.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from barrack_operator.barrack import (
    BarrackClient,
)
from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.capacity import Place, Placement, Want
from barrack_operator.conditions import Condition
from barrack_operator.costs import Demand
from barrack_operator.inventory import Inventory
from barrack_operator.resources.power import PowerOverride

RECREATE_ANNOTATION = "barrack.ai/recreate"
"""On an object whose Barrack resource is lost: "true" asks the operator for a new, empty one."""
PAUSED_ANNOTATION = "barrack.ai/paused"
""""true" stops every Barrack call for the object, deletion included, until it is removed."""
RECONCILE_REQUESTED_ANNOTATION = "barrack.ai/reconcile-requested-at"
"""A new value asks for a reconcile now; status.lastHandledReconcileAt echoes it once handled."""


@dataclass(frozen=True)
class ObjectView:
    """The Kubernetes object as reconcile sees it: plain data, no kopf types."""

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    create_requested_name: str | None = None
    """The Barrack name in the mark the operator writes on the object before it asks Barrack to
    create (see :func:`ensure_exists`)."""
    recreate_requested: bool = False
    """The object carries ``barrack.ai/recreate: "true"``: a lost resource may be made again."""
    paused: bool = False
    """The object carries ``barrack.ai/paused: "true"``: no Barrack call at all."""
    reconcile_requested_at: str | None = None
    """The value of ``barrack.ai/reconcile-requested-at``, echoed once a pass handled it."""
    finalizers: tuple[str, ...] = ()
    """``metadata.finalizers`` as the object was seen."""
    created_at: str = ""
    """``metadata.creationTimestamp``: who waited longest for scarce GPUs; when a lifetime began."""
    extend_lifetime: str | None = None
    """The value of ``barrack.ai/extend-lifetime``: a new value extends spec.lifetime once."""
    resource_version: str = ""
    """``metadata.resourceVersion`` as the object was seen (a precondition for a write that must
    not clobber another writer's finalizers)."""

    @property
    def observe_only(self) -> bool:
        """``managementPolicy: Observe``: status mirrors Barrack; no mutating call, ever."""
        return self.spec.get("managementPolicy") == "Observe"

    @property
    def barrack_name(self) -> str:
        return str(self.spec.get("name") or self.name)

    @property
    def create_requested(self) -> bool:
        """An earlier process asked Barrack to create this object's resource under its current
        Barrack name: a resource of that name may be the one it made."""
        return self.create_requested_name == self.barrack_name

    @property
    def recorded_id(self) -> str | None:
        value = self.status.get("id")
        return str(value) if value else None


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str

    def action(self, finalizing: bool) -> str:
        """What the operator did or tried (an Event's ``action``): named by the reason of a change,
        else what the pass was for."""
        return EVENT_ACTIONS.get(self.reason) or ("Delete" if finalizing else "Reconcile")


EVENT_ACTIONS = {
    "Created": "Create",
    "Recreated": "Create",
    "Deleting": "Delete",
    "Deleted": "Delete",
    "Retained": "Release",
    "Released": "Release",
    "Detaching": "Detach",
    "Attaching": "Attach",
    "AttachmentsChanged": "Attach",
    "Resizing": "Resize",
    "RulesChanged": "UpdateRules",
    "SecurityRulesChanged": "UpdateRules",
    "PowerStateChanged": "ChangePower",
    "PublicIPChanged": "UpdatePublicIP",
    "ScheduledRun": "Create",
    "SnapshotsPruned": "Delete",
}


@dataclass
class Outcome:
    """What a reconcile found and did. ``status`` holds the observed fields (not conditions);
    ``requeue_after`` is when to look again at the latest; ``done`` matters for deletion only."""

    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    watch: set[str] = field(default_factory=set)
    done: bool = False
    backoff: bool = False
    """A call was refused or failed: the glue retries this object with exponential backoff."""
    clear_annotations: list[str] = field(default_factory=list)
    """Annotations the glue removes from the object once the outcome is written."""
    spec_patch: dict[str, Any] = field(default_factory=dict)
    """Spec fields the glue writes (late initialization: Barrack's values for fields left out)."""
    delete_object: bool = False
    """The object is to be deleted (its lifetime ended with action Delete): the writer deletes it,
    and its finalizer settles the Barrack side as for any deletion."""
    defer_status: bool = False
    """The resource was created moments ago and this pass made progress (a transition, a call):
    it does not write status (see :attr:`Timing.create_quiet`)."""

    def warn(self, reason: str, message: str) -> None:
        self.events.append(Event("Warning", reason, message))

    def note(self, reason: str, message: str) -> None:
        self.events.append(Event("Normal", reason, message))


@dataclass(frozen=True)
class RefInfo:
    """What the operator knows of a referenced object from its last-seen status."""

    uid: str
    id: str | None
    ready: bool
    state: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None
    """The spec's accountRef name (None: the default account)."""
    region: str | None = None
    """The spec's region, else the one its status says it landed in (an instance's placement, a
    volume's region)."""
    instance_ref: str | None = None
    """The BarrackInstance a volume's spec.instanceRef names."""
    manages: bool = True
    """False for ``managementPolicy: Observe``: it records an id but never owns it."""


class References(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> RefInfo | None: ...

    def of_kind(self, kind: str, namespace: str) -> list[tuple[str, RefInfo]]:
        """The objects of a kind in a namespace, by name."""
        ...

    def namespace_of(self, key: str) -> str | None:
        """The namespace of the object of this uid, or that records this Barrack id."""
        ...

    def ids_in(self, namespace: str) -> set[str]:
        """The Barrack ids the managing objects of a namespace record."""
        ...

    def claimed_by_other(self, barrack_id: str, uid: str) -> bool: ...

    def manager_of(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object (not ``uid``) that manages the Barrack id."""
        ...

    def claim(self, barrack_id: str, uid: str) -> str | None:
        """Take the Barrack id for ``uid`` unless another object manages it; that object's
        ``Kind namespace/name`` when it does (nothing is taken then). One step, no await: two
        objects adopting one id at once cannot both take it."""
        ...

    def unclaim(self, barrack_id: str, uid: str) -> None:
        """Let go of a claim ``uid`` made (an adoption that did not complete)."""
        ...

    def recorded_by_other(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object (not ``uid``, not an observer) whose status
        records the Barrack id, if any."""
        ...

    def name_of(self, kind: str, namespace: str, barrack_id: str) -> str | None:
        """The object of this kind in this namespace that manages the Barrack id, if any."""
        ...


@dataclass
class Memory:
    """What the operator remembers per object between reconciles, beyond status: ids learnt but
    perhaps not yet written (a status write can fail), creates in flight and when the last one
    returned, objects whose deletion began, and refusals in a row (for backoff)."""

    known_ids: dict[str, str] = field(default_factory=dict)
    create_attempts: dict[str, float] = field(default_factory=dict)
    """When this object's last create call returned or failed (monotonic seconds)."""
    creating: set[str] = field(default_factory=set)
    """Objects with a create call waiting for the rate limiter or in flight."""
    deleting: dict[str, float] = field(default_factory=dict)
    """Objects whose deletion began, and when; no create is sent for them after that."""
    failures: dict[str, int] = field(default_factory=dict)
    """Failed or refused calls in a row per object."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """When this process first reconciled each object (monotonic seconds)."""
    last_call: dict[str, float] = field(default_factory=dict)
    """When a pass of each object last sent a call other than its create (monotonic seconds)."""

    DELETION_MARK_SECONDS = 3600.0
    """How long a deleted object's mark is kept, so that a reconcile still under way when its
    deletion ended cannot create for it."""

    def forget(self, uid: str, now: float) -> None:
        self.known_ids.pop(uid, None)
        self.create_attempts.pop(uid, None)
        self.failures.pop(uid, None)
        self.first_seen.pop(uid, None)
        self.last_call.pop(uid, None)
        self.deleting[uid] = now
        for old in [u for u, at in self.deleting.items() if at < now - self.DELETION_MARK_SECONDS]:
            del self.deleting[old]


@dataclass
class Timing:
    transition_requeue: float = 2.0
    """Seconds before a second look while Barrack reports a transitional state."""
    blocked_requeue: float = 10.0
    """Seconds before retrying a blocked precondition or a refused call."""
    drift_interval: float = 60.0
    """Seconds between looks at a settled object (drift is also seen at once by the inventory)."""
    create_quiet: float = 10.0
    """Seconds after a create during which the resource's progress (its first transitions, an
    attach, its first rules) is not written to status, only its outcome: most resources settle
    within them and get one status write, Ready, or a problem at once; one that takes longer shows
    its id and state from then on. The create mark covers a crash."""


async def _no_mark(obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
    return None


async def _no_budget(key: str, demand: Demand) -> None:
    return None


async def _no_config_map(namespace: str, name: str) -> dict[str, str] | None:
    return None


@dataclass
class Context:
    client: BarrackClient
    inventory: Inventory
    refs: References
    memory: Memory = field(default_factory=Memory)
    timing: Timing = field(default_factory=Timing)
    clock: Callable[[], float] = time.monotonic
    mark_create: Callable[[ObjectView, dict[str, Any]], Awaitable[None]] = _no_mark
    """Persist on the object, before a create is sent, that it asked for one (survives a crash),
    with the spec values the create applies to fields left out; raises :class:`MarkNotWritten`
    when it could not."""
    credits_depleted: Callable[[], bool] = lambda: False
    """The account's balance is spent (Barrack hibernates every instance until a top-up)."""
    admit: Callable[[str, Demand], Awaitable[None]] = _no_budget
    """The account's budget guard: raises :class:`OverBudget` when what is asked (a create, a
    power-on) would raise the account's burn above its maxHourlySpend; else reserves it."""
    capacity: Capacity = field(default_factory=lambda: AnyPlace())  # noqa: PLW0108 - defined below
    """Where new instances may land: Barrack's stock, prices and OS images (see :mod:`capacity`)."""
    power: Callable[[str, str], PowerOverride | None] = lambda namespace, name: None
    """What a BarrackPowerSchedule says of the instance of this namespace and name now."""
    barrack_clock: BarrackClock = field(default_factory=BarrackClock)
    """Barrack's time (see :mod:`barrack_operator.barrack.clock`): lifetimes are counted on it."""
    read_config_map: Callable[[str, str], Awaitable[dict[str, str] | None]] = _no_config_map
    """A ConfigMap's data by namespace and name (None: there is none); raises
    :class:`KubernetesRefused` when Kubernetes cannot say."""
    held_off: Callable[[str, bool], None] = lambda barrack_id, held: None
    """Whether a schedule or a lifetime holds this Barrack instance off against a spec that wants it
    running (what it saves is counted in the account's month)."""


class Capacity(Protocol):
    interval: float

    async def place(self, want: Want) -> Placement: ...

    def refused(self, uid: str, index: int) -> None: ...

    def taken(self, uid: str, index: int) -> None: ...

    def forget(self, uid: str) -> None: ...

    def hourly(self, place: Place) -> float | None: ...

    async def image_ids(self, region: str) -> dict[str, str]: ...


class AnyPlace:
    """A Context without a capacity board (unit tests of other kinds): the first alternative,
    always; no image is looked up."""

    interval = 2.0

    async def place(self, want: Want) -> Placement:
        return Placement(0)

    def refused(self, uid: str, index: int) -> None:
        return None

    def taken(self, uid: str, index: int) -> None:
        return None

    def forget(self, uid: str) -> None:
        return None

    def hourly(self, place: Place) -> float | None:
        return None

    async def image_ids(self, region: str) -> dict[str, str]:
        return {}


class OverBudget(Exception):
    """A create or power-on was refused before any call: it would exceed the account's budget."""


class CreditsDepleted(Exception):
    """The account's credit ran out (Barrack hibernated its instances): no restore or start is
    sent, it would only be refused (402)."""


class MarkNotWritten(Exception):
    """:attr:`Context.mark_create` could not persist the mark; the create was not sent."""


class KubernetesRefused(Exception):
    """A read the pass needs from Kubernetes (a ConfigMap) failed; nothing was sent to Barrack."""


class Lost(Exception):
    """Barrack no longer has the resource whose id the object recorded (404, or DELETED)."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"Barrack no longer has {resource_id}")
        self.resource_id = resource_id


class ObjectDeleting(Exception):
    """The object's deletion began: no create is sent for it."""


class CreateInFlight(Exception):
    """A create for this object waits for the rate limiter or for Barrack's reply: until it
    returns, nobody can say whether Barrack holds a resource of it."""


def ref_key(kind: str, namespace: str, name: str) -> str:
    return f"k8s:{kind}/{namespace}/{name}"


def referent(key: str) -> tuple[str, str, str] | None:
    """The (kind, namespace, name) a :func:`ref_key` names; None for any other key."""
    if not key.startswith("k8s:"):
        return None
    kind, namespace, name = key.removeprefix("k8s:").split("/", 2)
    return kind, namespace, name


def id_key(barrack_id: str) -> str:
    return f"brk:{barrack_id}"
