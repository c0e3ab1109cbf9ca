"""The async Barrack client.

Every request goes through :meth:`BarrackClient._call`: one rate limiter, one retry policy, one
error mapping, one per-route call counter. Reads are retried on transient faults with jittered
backoff; a mutation is repeated only when Barrack surely did not act on it (429, or a connection
that never opened), because a 5xx or a timeout after a create may mean the create happened.

Lists are read whole: pages are requested until one comes back empty or short, whatever
``total_pages`` says (a missing or understated count must not hide resources, or the operator
would take a listed resource for gone).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.barrack.credentials import KeySource
from barrack_operator.barrack.errors import (
    ApiUnavailable,
    BarrackError,
    CallsPaused,
    MalformedReply,
    RateLimited,
    TransientError,
    Unauthorized,
    error_from_response,
    map_transport_errors,
)
from barrack_operator.barrack.ratelimit import RateLimiter
from barrack_operator.barrack.routes import ROUTES, STANDARD_AUTH, Auth, Route

R = TypeVar("R", bound=BaseModel)
MUTATIONS: contextvars.ContextVar[list[tuple[str, str | None]] | None] = contextvars.ContextVar(
    "barrack_mutations", default=None
)
"""Set to a list by a caller that wants to know which mutations its task sent: each route's name
and the id in its path (None for a create)."""
CALLS_PAUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("barrack_calls_paused", default=False)
"""Set by a caller whose task may read only what the inventory holds (a paused object's pass):
any call, a read included, raises :class:`CallsPaused` before it is sent."""
PAGE_LIMIT = 100
MAX_PAGES = 10_000
"""A listing that has not ended after this many full pages (a million resources) is a server that
ignores ``page``; it fails rather than loop for ever."""
CallObserver = Callable[[str, str, float], None]
LISTINGS: dict[str, tuple[str, type[m.Page], str]] = {
    "volumes": ("list_volumes", m.VolumeListResponse, "volumes"),
    "instances": ("list_instances", m.InstanceListResponse, "instances"),
    "firewalls": ("list_firewalls", m.FirewallListResponse, "firewalls"),
    "ssh_keys": ("list_ssh_keys", m.SSHKeyListResponse, "ssh_keys"),
    "scripts": ("list_scripts", m.ScriptListResponse, "scripts"),
    "snapshots": ("list_snapshots", m.SnapshotListResponse, "snapshots"),
    "images": ("list_images", m.ImageListResponse, "images"),
}
"""Each listing the inventory keeps: its route, its reply and the reply's key for the items."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before repeating a request that failed transiently."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    untold_429_first: float = 1.0
    """The wait after a 429 without ``Retry-After``; it doubles with each such 429 in a row."""
    untold_429_max: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def untold_429_delay(self, in_a_row: int) -> float:
        """Exponential backoff from 1 s for the ``in_a_row``-th 429 without ``Retry-After`` (from 0)."""
        return float(min(self.untold_429_max, self.untold_429_first * 2 ** min(in_a_row, 30)))

    def may_retry(self, route: Route, error: TransientError) -> bool:
        if isinstance(error, RateLimited):
            return True
        if route.is_read:
            return True
        return isinstance(error, ApiUnavailable) and not error.sent


class BarrackClient:
    def __init__(
        self,
        base_url: str,
        api_key: KeySource,
        *,
        auth: Auth = STANDARD_AUTH,
        requests_per_second: float = 10.0,
        burst: int = 5,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
        seed: int | None = None,
        mutation_guard: Callable[[], None] | None = None,
        clock: BarrackClock | None = None,
    ) -> None:
        self._api_key = api_key
        self._auth = auth
        self._untold_429s = 0
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)
        self.limiter = RateLimiter(requests_per_second, burst)
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(seed)
        self._observer = observer
        self._guard = mutation_guard
        """Called before every mutation is sent (leader fencing); it raises to stop the call."""
        self.calls: Counter[tuple[str, str]] = Counter()
        self.clock = clock or BarrackClock()
        """Barrack's clock, told the Date of every reply."""

    async def aclose(self) -> None:
        await self.limiter.close()
        await self._http.aclose()

    async def __aenter__(self) -> BarrackClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # The one request path ------------------------------------------------------------------------

    async def _call(
        self,
        route_name: str,
        reply: type[R],
        *,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
        **path: str,
    ) -> R:
        route = ROUTES[route_name]
        if CALLS_PAUSED.get():
            raise CallsPaused(f"{route_name} not sent: the object is paused", route=route_name)
        attempt = 0
        while True:
            try:
                return await self._send_once(route, reply, body, params, path)
            except Unauthorized as error:
                error.fix = self._api_key.fix()
                raise
            except TransientError as error:
                attempt += 1
                if attempt >= self.retry.attempts or not self.retry.may_retry(route, error):
                    raise
                if isinstance(error, RateLimited):
                    self.limiter.pause_for(error.retry_after)
                else:
                    await asyncio.sleep(self.retry.delay(attempt, self._rng))

    async def _send_once(
        self,
        route: Route,
        reply: type[R],
        body: BaseModel | None,
        params: dict[str, Any] | None,
        path: dict[str, str],
    ) -> R:
        async with self.limiter.slot(urgent=route.is_read, follow_up=not route.makes):
            if self._guard is not None and not route.is_read:
                self._guard()  # as late as possible: the wait for the rate limiter may have been long
            key = await self._api_key.aget()
            sent = MUTATIONS.get()
            if sent is not None and not route.is_read:
                sent.append((route.name, path.get("id")))
            started = time.monotonic()
            outcome = "error"
            try:
                with map_transport_errors(route.name):
                    response = await self._http.request(
                        route.method.value,
                        route.url(**path),
                        params=params,
                        json=body.model_dump(mode="json", exclude_none=True) if body is not None else None,
                        headers=self._auth.headers(key),
                    )
                outcome = str(response.status_code)
                self.clock.observe(response.headers.get("date"))
            finally:
                self.calls[(route.name, outcome)] += 1
                if self._observer is not None:
                    self._observer(route.name, outcome, time.monotonic() - started)
        if response.is_success:
            self._untold_429s = 0
            return self._parse(route, reply, response)
        error = error_from_response(response, route=route.name, secret=key)
        if isinstance(error, RateLimited) and not error.told:
            error.retry_after = self.retry.untold_429_delay(self._untold_429s)
            self._untold_429s += 1
        raise error

    @staticmethod
    def _parse(route: Route, reply: type[R], response: httpx.Response) -> R:
        """The reply as its model; a body that is not JSON or not of the contract's shape is
        :class:`MalformedReply`, never a bare ValueError that would escape every caller's handling."""
        try:
            return reply.model_validate(response.json())
        except ValueError as exc:  # json.JSONDecodeError and pydantic.ValidationError are ValueErrors
            what = "is not JSON" if not isinstance(exc, ValidationError) else f"does not fit {reply.__name__}"
            raise MalformedReply(
                f"Barrack's reply {what} ({exc.__class__.__name__}, {len(response.content)} bytes)",
                route=route.name,
            ) from None

    async def _paginate(
        self, route_name: str, reply: type[R], items: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        for page in range(1, MAX_PAGES + 1):
            result = await self._call(
                route_name, reply, params={**(params or {}), "page": page, "limit": PAGE_LIMIT}
            )
            batch = getattr(result, items)
            for item in batch:
                yield item
            if len(batch) < min(PAGE_LIMIT, result.limit or PAGE_LIMIT):  # type: ignore[attr-defined]
                return
        raise MalformedReply(f"the listing did not end after {MAX_PAGES} full pages", route=route_name)

    def iter_listing(self, listing: str) -> AsyncIterator[Any]:
        """Every resource of one of :data:`LISTINGS`, read whole."""
        route_name, reply, items = LISTINGS[listing]
        return self._paginate(route_name, reply, items)

    async def read_page(self, listing: str, page: int, limit: int = PAGE_LIMIT) -> list[Any]:
        """One page of one of :data:`LISTINGS` (``limit`` a page, at most PAGE_LIMIT; the first
        page is 1, page N begins at (N - 1) x limit). A page shows what is on it; what is not on it
        may be on another page (a resource before it went, and the rest moved up), so only a whole
        listing says that a resource is gone."""
        route_name, reply, items = LISTINGS[listing]
        result = await self._call(route_name, reply, params={"page": page, "limit": min(limit, PAGE_LIMIT)})
        return list(getattr(result, items))

    # Account -------------------------------------------------------------------------------------

    async def get_balance(self) -> m.BalanceResponse:
        return await self._call("get_balance", m.BalanceResponse)

    async def list_regions(self) -> list[dict[str, Any]]:
        return [r async for r in self._paginate("list_regions", m.RegionListResponse, "regions")]

    async def list_gpu_stocks(self) -> list[dict[str, Any]]:
        return [s async for s in self._paginate("list_gpu_stocks", m.GPUStockListResponse, "gpu_stocks")]

    async def list_os_images(self, region: str | None = None) -> list[m.OSImage]:
        params = {"region": region} if region else None
        return [i async for i in self._paginate("list_os_images", m.OSImageListResponse, "os_images", params)]

    async def get_pricing(self, request: rq.PricingRequest) -> m.PricingResponse:
        return await self._call("get_pricing", m.PricingResponse, body=request)

    async def get_instance_billing(self, instance_id: str) -> m.BillingResponse:
        return await self._call("get_instance_billing", m.BillingResponse, id=instance_id)

    async def get_volume_billing(self, volume_id: str) -> m.BillingResponse:
        return await self._call("get_volume_billing", m.BillingResponse, id=volume_id)

    async def list_volume_types(self) -> list[dict[str, Any]]:
        return [
            t async for t in self._paginate("list_volume_types", m.VolumeTypeListResponse, "volume_types")
        ]

    # Volumes -------------------------------------------------------------------------------------

    def iter_volumes(self, region: str | None = None) -> AsyncIterator[m.Volume]:
        params = {"region": region} if region else None
        return self._paginate("list_volumes", m.VolumeListResponse, "volumes", params)

    # Snapshots and custom images -----------------------------------------------------------------

    def iter_snapshots(self) -> AsyncIterator[m.Snapshot]:
        return self.iter_listing("snapshots")

    async def create_snapshot(self, request: rq.CreateSnapshotRequest) -> m.Snapshot:
        return (await self._call("create_snapshot", m.SnapshotResponse, body=request)).snapshot

    async def list_snapshot_eligible_instances(self) -> list[m.VMInstance]:
        return [
            i
            async for i in self._paginate(
                "list_snapshot_eligible_instances", m.InstanceListResponse, "instances"
            )
        ]

    async def get_snapshot(self, snapshot_id: str) -> m.Snapshot:
        return (await self._call("get_snapshot", m.SnapshotResponse, id=snapshot_id)).snapshot

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._call("delete_snapshot", m.Envelope, id=snapshot_id)

    async def restore_snapshot(self, snapshot_id: str, request: rq.RestoreSnapshotRequest) -> m.VMInstance:
        return (
            await self._call("restore_snapshot", m.InstanceResponse, body=request, id=snapshot_id)
        ).instance

    async def create_image(self, snapshot_id: str, name: str) -> m.CustomImage:
        body = rq.CreateImageRequest(name=name)
        return (await self._call("create_image", m.ImageResponse, body=body, id=snapshot_id)).image

    async def get_snapshot_billing(self, snapshot_id: str) -> m.BillingResponse:
        return await self._call("get_snapshot_billing", m.BillingResponse, id=snapshot_id)

    def iter_images(self) -> AsyncIterator[m.CustomImage]:
        return self.iter_listing("images")

    async def get_image(self, image_id: str) -> m.CustomImage:
        return (await self._call("get_image", m.ImageResponse, id=image_id)).image

    async def delete_image(self, image_id: str) -> None:
        await self._call("delete_image", m.Envelope, id=image_id)

    # Volumes ---------------------------------------------------------------------------------------

    async def create_volume(self, request: rq.CreateVolumeRequest) -> m.Volume:
        return (await self._call("create_volume", m.VolumeResponse, body=request)).volume

    async def get_volume(self, volume_id: str) -> m.Volume:
        return (await self._call("get_volume", m.VolumeResponse, id=volume_id)).volume

    async def delete_volume(self, volume_id: str) -> None:
        await self._call("delete_volume", m.Envelope, id=volume_id)

    async def resize_volume(self, volume_id: str, size_gb: int) -> m.Volume:
        body = rq.ResizeVolumeRequest(size_gb=size_gb)
        return (await self._call("resize_volume", m.VolumeResponse, body=body, id=volume_id)).volume

    async def clone_volume(self, volume_id: str, name: str) -> m.Volume:
        body = rq.CloneVolumeRequest(name=name)
        return (await self._call("clone_volume", m.VolumeResponse, body=body, id=volume_id)).volume

    async def attach_volumes(self, instance_id: str, volume_ids: list[str]) -> m.VMInstance:
        body = rq.AttachVolumesRequest(volume_ids=volume_ids)
        return (await self._call("attach_volumes", m.InstanceResponse, body=body, id=instance_id)).instance

    async def detach_volumes(self, instance_id: str, volume_ids: list[str]) -> m.VMInstance:
        body = rq.DetachVolumesRequest(volume_ids=volume_ids)
        return (await self._call("detach_volumes", m.InstanceResponse, body=body, id=instance_id)).instance

    # Instances -----------------------------------------------------------------------------------

    def iter_instances(self) -> AsyncIterator[m.VMInstance]:
        return self.iter_listing("instances")

    async def create_instance(self, request: rq.DeploymentRequest) -> m.VMInstance:
        return (await self._call("create_instance", m.InstanceResponse, body=request)).instance

    async def get_instance(self, instance_id: str) -> m.VMInstance:
        return (await self._call("get_instance", m.InstanceResponse, id=instance_id)).instance

    async def delete_instance(self, instance_id: str) -> None:
        await self._call("delete_instance", m.Envelope, id=instance_id)

    async def instance_action(self, instance_id: str, action: str) -> m.VMInstance:
        """``action`` is one of start, stop, reboot, hibernate, restore."""
        route = f"{action}_instance"
        if route not in ROUTES:
            raise ValueError(f"unknown instance action {action!r}")
        return (await self._call(route, m.InstanceResponse, id=instance_id)).instance

    async def set_public_ip(self, instance_id: str, enabled: bool) -> m.VMInstance:
        body = rq.PublicIPRequest(enabled=enabled)
        return (await self._call("set_public_ip", m.InstanceResponse, body=body, id=instance_id)).instance

    async def add_security_rule(self, instance_id: str, rule: rq.AddFirewallRuleRequest) -> m.FirewallRule:
        return (await self._call("add_security_rule", m.FirewallRuleResponse, body=rule, id=instance_id)).rule

    async def remove_security_rule(self, instance_id: str, rule_id: str) -> None:
        await self._call("remove_security_rule", m.Envelope, id=instance_id, rule_id=rule_id)

    async def list_instance_firewalls(self, instance_id: str) -> list[m.Firewall]:
        reply = await self._call("list_instance_firewalls", m.FirewallListResponse, id=instance_id)
        return reply.firewalls

    # Firewalls -----------------------------------------------------------------------------------

    async def list_firewall_protocols(self) -> list[str]:
        return (await self._call("list_firewall_protocols", m.ProtocolListResponse)).protocols

    def iter_firewalls(self) -> AsyncIterator[m.Firewall]:
        return self.iter_listing("firewalls")

    async def create_firewall(self, request: rq.CreateFirewallRequest) -> m.Firewall:
        return (await self._call("create_firewall", m.FirewallResponse, body=request)).firewall

    async def get_firewall(self, firewall_id: str) -> m.Firewall:
        return (await self._call("get_firewall", m.FirewallResponse, id=firewall_id)).firewall

    async def delete_firewall(self, firewall_id: str) -> None:
        await self._call("delete_firewall", m.Envelope, id=firewall_id)

    async def add_firewall_rule(self, firewall_id: str, rule: rq.AddFirewallRuleRequest) -> m.FirewallRule:
        return (await self._call("add_firewall_rule", m.FirewallRuleResponse, body=rule, id=firewall_id)).rule

    async def remove_firewall_rule(self, firewall_id: str, rule_id: str) -> None:
        await self._call("remove_firewall_rule", m.Envelope, id=firewall_id, rule_id=rule_id)

    async def attach_firewall(self, firewall_id: str, instance_ids: list[str]) -> m.Firewall:
        body = rq.AttachFirewallRequest(instance_ids=instance_ids)
        return (await self._call("attach_firewall", m.FirewallResponse, body=body, id=firewall_id)).firewall

    # SSH keys ------------------------------------------------------------------------------------

    def iter_ssh_keys(self) -> AsyncIterator[m.SSHKey]:
        return self.iter_listing("ssh_keys")

    async def create_ssh_key(self, request: rq.CreateSSHKeyRequest) -> m.SSHKey:
        return (await self._call("create_ssh_key", m.SSHKeyResponse, body=request)).ssh_key

    async def get_ssh_key(self, key_id: str) -> m.SSHKey:
        return (await self._call("get_ssh_key", m.SSHKeyResponse, id=key_id)).ssh_key

    async def delete_ssh_key(self, key_id: str) -> None:
        await self._call("delete_ssh_key", m.Envelope, id=key_id)

    # Startup scripts ---------------------------------------------------------------------------

    def iter_scripts(self) -> AsyncIterator[m.Script]:
        return self.iter_listing("scripts")

    async def create_script(self, request: rq.CreateScriptRequest) -> m.Script:
        return (await self._call("create_script", m.ScriptResponse, body=request)).script

    async def get_script(self, script_id: str) -> m.Script:
        return (await self._call("get_script", m.ScriptResponse, id=script_id)).script

    async def update_script(self, script_id: str, request: rq.UpdateScriptRequest) -> m.Script:
        return (await self._call("update_script", m.ScriptResponse, body=request, id=script_id)).script

    async def delete_script(self, script_id: str) -> None:
        await self._call("delete_script", m.Envelope, id=script_id)


__all__ = ["BarrackClient", "BarrackError", "RetryPolicy"]
