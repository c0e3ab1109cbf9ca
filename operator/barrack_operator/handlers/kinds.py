"""Which reconcile and finalizer serve which kind: the one table the operator installs into kopf."""

from __future__ import annotations

import kopf

from barrack_operator.engine.objects import Reconciler
from barrack_operator.engine.runtime import Runtime
from barrack_operator.handlers.glue import (
    register,
    register_accounts,
    register_power_schedules,
    register_schedules,
)
from barrack_operator.resources import firewall, image, instance, script, snapshot, sshkey, volume
from barrack_operator.resources.kinds import (
    FIREWALL,
    IMAGE,
    INSTANCE,
    SCRIPT,
    SNAPSHOT,
    SSH_KEY,
    VOLUME,
    Kind,
)

HANDLERS: dict[Kind, tuple[Reconciler, Reconciler]] = {
    VOLUME: (volume.reconcile, volume.finalize),
    INSTANCE: (instance.reconcile, instance.finalize),
    FIREWALL: (firewall.reconcile, firewall.finalize),
    SSH_KEY: (sshkey.reconcile, sshkey.finalize),
    SCRIPT: (script.reconcile, script.finalize),
    SNAPSHOT: (snapshot.reconcile, snapshot.finalize),
    IMAGE: (image.reconcile, image.finalize),
}


def install(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    for kind, (reconcile, finalize) in HANDLERS.items():
        register(registry, runtime, kind, reconcile, finalize)
    register_schedules(registry, runtime)
    register_power_schedules(registry, runtime)
    register_accounts(registry, runtime)
