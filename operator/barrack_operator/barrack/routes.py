"""The one table of Barrack API paths.

Barrack publishes only ``POST /api/pricing/``; every other path here is the project's reading of
the docs menu (see the API contract). When Barrack confirms a path, correct it here: the client
and the simulator both read this table, so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Method(StrEnum):
    GET = "GET"
    POST = "POST"
    DELETE = "DELETE"


@dataclass(frozen=True)
class Route:
    """One Barrack operation: its name, method and path template (``{id}``, ``{rule_id}``)."""

    name: str
    method: Method
    path: str

    @property
    def is_read(self) -> bool:
        return self.method is Method.GET

    def url(self, **params: str) -> str:
        return self.path.format(**params)


G, P, D = Method.GET, Method.POST, Method.DELETE

ROUTES: dict[str, Route] = {
    route.name: route
    for route in (
        Route("get_balance", G, "/balance/"),
        Route("list_regions", G, "/regions/"),
        Route("list_gpu_stocks", G, "/gpu-stocks/"),
        Route("list_os_images", G, "/os-images/"),
        Route("get_pricing", P, "/pricing/"),
        Route("list_volume_types", G, "/volume-types/"),
        Route("list_volumes", G, "/volumes/"),
        Route("create_volume", P, "/volumes/"),
        Route("get_volume", G, "/volumes/{id}/"),
        Route("delete_volume", D, "/volumes/{id}/"),
        Route("resize_volume", P, "/volumes/{id}/resize/"),
        Route("clone_volume", P, "/volumes/{id}/clone/"),
        Route("list_instances", G, "/instances/"),
        Route("create_instance", P, "/instances/"),
        Route("get_instance", G, "/instances/{id}/"),
        Route("delete_instance", D, "/instances/{id}/"),
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
        Route("create_firewall", P, "/firewalls/"),
        Route("get_firewall", G, "/firewalls/{id}/"),
        Route("delete_firewall", D, "/firewalls/{id}/"),
        Route("add_firewall_rule", P, "/firewalls/{id}/rules/"),
        Route("remove_firewall_rule", D, "/firewalls/{id}/rules/{rule_id}/"),
        Route("attach_firewall", P, "/firewalls/{id}/attach/"),
        Route("list_ssh_keys", G, "/ssh-keys/"),
        Route("create_ssh_key", P, "/ssh-keys/"),
        Route("get_ssh_key", G, "/ssh-keys/{id}/"),
        Route("delete_ssh_key", D, "/ssh-keys/{id}/"),
    )
}

AUTH_HEADER = "Authorization"


def auth_header_value(api_key: str) -> str:
    """How the API key travels: a bearer token (the project's choice; Barrack does not say)."""
    return f"Bearer {api_key}"


def api_key_from_header(value: str | None) -> str | None:
    """The inverse of :func:`auth_header_value`, for the simulator."""
    if value is None or not value.startswith("Bearer "):
        return None
    return value.removeprefix("Bearer ")
