"""The one table of Barrack API paths.

Barrack publishes only ``POST /api/pricing/``; every other path here is the project's reading of
the docs menu (see the API contract). When Barrack confirms a path, correct it here: the client
and the simulator both read this table, so nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Method(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True)
class Route:
    """One Barrack operation: its name, method and path template (``{id}``, ``{rule_id}``)."""

    name: str
    method: Method
    path: str
    reads_only: bool = False
    """A POST that changes nothing (the price quote): retried and prioritized as a read."""
    makes: bool = False
    """It makes a new resource (a create, a clone, a restore, an image): the rate limiter serves
    work on resources that exist first (see :class:`~barrack_operator.barrack.ratelimit.RateLimiter`)."""

    @property
    def is_read(self) -> bool:
        return self.method is Method.GET or self.reads_only

    def url(self, **params: str) -> str:
        return self.path.format(**params)


G, P, U, D = Method.GET, Method.POST, Method.PUT, Method.DELETE

ROUTES: dict[str, Route] = {
    route.name: route
    for route in (
        Route("get_balance", G, "/balance/"),
        Route("list_regions", G, "/regions/"),
        Route("list_gpu_stocks", G, "/gpu-stocks/"),
        Route("list_os_images", G, "/os-images/"),
        Route("get_pricing", P, "/pricing/", reads_only=True),
        Route("list_volume_types", G, "/volume-types/"),
        Route("list_volumes", G, "/volumes/"),
        Route("create_volume", P, "/volumes/", makes=True),
        Route("get_volume", G, "/volumes/{id}/"),
        Route("delete_volume", D, "/volumes/{id}/"),
        Route("resize_volume", P, "/volumes/{id}/resize/"),
        Route("clone_volume", P, "/volumes/{id}/clone/", makes=True),
        Route("get_volume_billing", G, "/volumes/{id}/billing/"),
        Route("list_instances", G, "/instances/"),
        Route("create_instance", P, "/instances/", makes=True),
        Route("get_instance", G, "/instances/{id}/"),
        Route("delete_instance", D, "/instances/{id}/"),
        Route("get_instance_billing", G, "/instances/{id}/billing/"),
        Route("attach_volumes", P, "/instances/{id}/attach-volumes/"),
        Route("detach_volumes", P, "/instances/{id}/detach-volumes/"),
        Route("start_instance", P, "/instances/{id}/start/"),
        Route("stop_instance", P, "/instances/{id}/stop/"),
        Route("reboot_instance", P, "/instances/{id}/reboot/"),
        Route("hibernate_instance", P, "/instances/{id}/hibernate/"),
        Route("restore_instance", P, "/instances/{id}/restore/"),
        Route("set_public_ip", P, "/instances/{id}/public-ip/"),
        Route("add_security_rule", P, "/instances/{id}/security-rules/"),
        Route("remove_security_rule", D, "/instances/{id}/security-rules/{rule_id}/"),
        Route("list_instance_firewalls", G, "/instances/{id}/firewalls/"),
        Route("list_firewall_protocols", G, "/firewalls/protocols/"),
        Route("list_firewalls", G, "/firewalls/"),
        Route("create_firewall", P, "/firewalls/", makes=True),
        Route("get_firewall", G, "/firewalls/{id}/"),
        Route("delete_firewall", D, "/firewalls/{id}/"),
        Route("add_firewall_rule", P, "/firewalls/{id}/rules/"),
        Route("remove_firewall_rule", D, "/firewalls/{id}/rules/{rule_id}/"),
        Route("attach_firewall", P, "/firewalls/{id}/attach/"),
        Route("list_snapshots", G, "/snapshots/"),
        Route("create_snapshot", P, "/snapshots/", makes=True),
        Route("list_snapshot_eligible_instances", G, "/snapshots/eligible-instances/"),
        Route("get_snapshot", G, "/snapshots/{id}/"),
        Route("delete_snapshot", D, "/snapshots/{id}/"),
        Route("restore_snapshot", P, "/snapshots/{id}/restore/", makes=True),
        Route("create_image", P, "/snapshots/{id}/image/", makes=True),
        Route("get_snapshot_billing", G, "/snapshots/{id}/billing/"),
        Route("list_images", G, "/images/"),
        Route("get_image", G, "/images/{id}/"),
        Route("delete_image", D, "/images/{id}/"),
        Route("list_ssh_keys", G, "/ssh-keys/"),
        Route("create_ssh_key", P, "/ssh-keys/", makes=True),
        Route("get_ssh_key", G, "/ssh-keys/{id}/"),
        Route("delete_ssh_key", D, "/ssh-keys/{id}/"),
        Route("list_scripts", G, "/scripts/"),
        Route("create_script", P, "/scripts/", makes=True),
        Route("get_script", G, "/scripts/{id}/"),
        Route("update_script", U, "/scripts/{id}/"),
        Route("delete_script", D, "/scripts/{id}/"),
    )
}


@dataclass(frozen=True)
class Auth:
    """How the API key travels: a header and a scheme word before the key (empty: the bare key).

    Barrack does not say; the project's choice is ``Authorization: Bearer <key>``. The legacy tier
    follows an upstream API that sends ``api_key: <key>`` (contract section 7), so both are settings."""

    header: str = "Authorization"
    scheme: str = "Bearer"

    def headers(self, api_key: str) -> dict[str, str]:
        return {self.header: f"{self.scheme} {api_key}" if self.scheme else api_key}

    def key_from(self, headers: Mapping[str, str]) -> str | None:
        """The inverse of :meth:`headers`, for the simulator."""
        value = headers.get(self.header)
        if value is None or not self.scheme:
            return value
        prefix = f"{self.scheme} "
        return value.removeprefix(prefix) if value.startswith(prefix) else None


STANDARD_AUTH = Auth()
LEGACY_AUTH = Auth(header="api_key", scheme="")
