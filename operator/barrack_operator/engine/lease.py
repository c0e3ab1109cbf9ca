"""Where the operator's Lease is and under which name it is held, and what losing it does."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from barrack_operator.leadership import LeaseSettings
from barrack_operator.settings import Settings

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def lease_settings(settings: Settings) -> LeaseSettings:
    """The Lease: in the configured namespace, else the pod's, else ``default``; held under the pod's
    name (a restarted container keeps its pod's leadership), else the host name."""
    namespace = settings.leader_election_namespace or os.environ.get("POD_NAMESPACE", "")
    if not namespace and SERVICE_ACCOUNT_NAMESPACE.is_file():
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return LeaseSettings(
        namespace=namespace or "default",
        identity=os.environ.get("POD_NAME") or socket.gethostname(),
        lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline,
        retry_period=settings.retry_period,
    )


def operator_namespace(settings: Settings) -> str:
    """The operator's own namespace (where its Lease is and the only one it reads Secrets in):
    the leader-election namespace if set, else the pod's, else the service account's, else default."""
    return lease_settings(settings).namespace


def stop_process() -> None:
    """Leadership lost: stop as on SIGTERM (kopf stops cleanly); the kubelet starts it again as a
    standby."""
    os.kill(os.getpid(), signal.SIGTERM)
