"""The simulator's ASGI app: the contract's routes under ``/api`` (from the one routes table), each
bound to an :class:`~barrack_sim.account.Account` operation, with Barrack's envelopes, auth and
status codes; fault injection on those routes; and the admin API under ``/_sim/``.

It speaks one of two dialects (contract section 7): ``standard`` (``Authorization: Bearer``,
``{"success", "message", "error_code"}``, 429 with ``Retry-After``) or ``legacy`` (``api_key``
header, ``{"status", "message", "error_reason"}``, 429 without ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as wire_requests
from barrack_operator.barrack.routes import LEGACY_AUTH, ROUTES, STANDARD_AUTH, Auth
from barrack_sim import money
from barrack_sim.account import Account
from barrack_sim.errors import Invalid, SimError, Unauthenticated
from barrack_sim.faults import FaultInjector

MAX_PAGE_LIMIT = 100
ARRIVALS_KEPT = 200_000
Handler = Callable[[Request, Account], Awaitable[dict[str, Any]]]
Dialect = Literal["standard", "legacy"]
AUTH_OF_DIALECT: dict[str, Auth] = {"standard": STANDARD_AUTH, "legacy": LEGACY_AUTH}


@dataclass
class Simulator:
    account: Account
    api_keys: set[str]
    faults: FaultInjector = field(default_factory=FaultInjector)
    calls: Counter[tuple[str, int]] = field(default_factory=Counter)
    arrivals: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=ARRIVALS_KEPT))
    """When each recent Barrack request arrived (monotonic seconds) and its route: the peak rate,
    and a timeline by route."""
    dialect: Dialect = "standard"

    @property
    def auth(self) -> Auth:
        return AUTH_OF_DIALECT[self.dialect]

    def __post_init__(self) -> None:
        self._request_ids = itertools.count(1)

    def request_id(self) -> str:
        return f"req-{next(self._request_ids):08x}"


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


async def _body(request: Request, model: type[BaseModel]) -> Any:
    try:
        raw = await request.body()
        return model.model_validate(json.loads(raw or b"{}"))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        raise Invalid(f"Invalid request body: {where or 'not JSON'}") from None


def _paged(request: Request, key: str, items: list[Any]) -> dict[str, Any]:
    try:
        page = int(request.query_params.get("page", 1))
        limit = int(request.query_params.get("limit", MAX_PAGE_LIMIT))
    except ValueError:
        raise Invalid("page and limit must be whole numbers") from None
    if page < 1 or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise Invalid(f"page must be at least 1 and limit between 1 and {MAX_PAGE_LIMIT}")
    start = (page - 1) * limit
    chunk = items[start : start + limit]
    return {
        key: [_dump(i) if isinstance(i, BaseModel) else i for i in chunk],
        "total": len(items),
        "page": page,
        "limit": limit,
        "total_pages": max(1, math.ceil(len(items) / limit)),
    }


def _in_region(request: Request, items: list[Any]) -> list[Any]:
    region = request.query_params.get("region")
    return [i for i in items if region is None or i.region == region]


# Route handlers, keyed by the route names of the routes table ------------------------------------


def _handlers() -> dict[str, Handler]:  # noqa: PLR0915 - one table, one entry a route
    h: dict[str, Handler] = {}

    def route(name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            h[name] = fn
            return fn

        return register

    @route("get_balance")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"currency": a.config.currency, "balance": a.config.balance}

    @route("list_regions")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "regions", [{"name": r.value} for r in m.Region])

    @route("list_gpu_stocks")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "gpu_stocks", a.gpu_stocks())

    @route("list_os_images")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "os_images", _in_region(rq, list(a.images.values())))

    @route("get_pricing")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.PricingRequest = await _body(rq, wire_requests.PricingRequest)
        try:
            hourly = money.quote(req)
        except KeyError as exc:
            raise Invalid(str(exc.args[0])) from None
        return {"pricing": {"currency": req.currency, "tier": req.tier, "hourly": round(hourly, 6)}}

    @route("list_snapshots")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        wanted = rq.query_params.get("instance_id")
        snapshots = [s for s in a.snapshots.values() if wanted is None or s.instance_id == wanted]
        return _paged(rq, "snapshots", _in_region(rq, snapshots))

    @route("create_snapshot")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"snapshot": _dump(a.create_snapshot(await _body(rq, wire_requests.CreateSnapshotRequest)))}

    @route("list_snapshot_eligible_instances")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "instances", a.eligible_for_snapshot())

    @route("get_snapshot")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"snapshot": _dump(a.snapshot(rq.path_params["id"]))}

    @route("delete_snapshot")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_snapshot(rq.path_params["id"])
        return {}

    @route("restore_snapshot")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.RestoreSnapshotRequest = await _body(rq, wire_requests.RestoreSnapshotRequest)
        return {"instance": _dump(a.restore_snapshot(rq.path_params["id"], req))}

    @route("create_image")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.CreateImageRequest = await _body(rq, wire_requests.CreateImageRequest)
        return {"image": _dump(a.create_image(rq.path_params["id"], req.name))}

    @route("get_snapshot_billing")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        records, summary = a.billing(rq.path_params["id"], "snapshot_id")
        return {**_paged(rq, "records", records), "summary": summary}

    @route("list_images")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "images", _in_region(rq, list(a.custom_images.values())))

    @route("get_image")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"image": _dump(a.custom_image(rq.path_params["id"]))}

    @route("delete_image")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_image(rq.path_params["id"])
        return {}

    @route("get_instance_billing")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        records, summary = a.billing(rq.path_params["id"], "instance_id")
        return {**_paged(rq, "records", records), "summary": summary}

    @route("get_volume_billing")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        records, summary = a.billing(rq.path_params["id"], "volume_id")
        return {**_paged(rq, "records", records), "summary": summary}

    @route("list_volume_types")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        types = [{"name": t.value, "tier": "advanced" if t.advanced else "legacy"} for t in m.VolumeType]
        return _paged(rq, "volume_types", types)

    @route("list_volumes")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "volumes", _in_region(rq, list(a.volumes.values())))

    @route("create_volume")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"volume": _dump(a.create_volume(await _body(rq, wire_requests.CreateVolumeRequest)))}

    @route("get_volume")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"volume": _dump(a.volume(rq.path_params["id"]))}

    @route("delete_volume")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_volume(rq.path_params["id"])
        return {}

    @route("resize_volume")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.ResizeVolumeRequest = await _body(rq, wire_requests.ResizeVolumeRequest)
        return {"volume": _dump(a.resize_volume(rq.path_params["id"], req.size_gb))}

    @route("clone_volume")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.CloneVolumeRequest = await _body(rq, wire_requests.CloneVolumeRequest)
        return {"volume": _dump(a.clone_volume(rq.path_params["id"], req.name))}

    @route("attach_volumes")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.AttachVolumesRequest = await _body(rq, wire_requests.AttachVolumesRequest)
        return {"instance": _dump(a.attach_volumes(rq.path_params["id"], req.volume_ids))}

    @route("detach_volumes")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.DetachVolumesRequest = await _body(rq, wire_requests.DetachVolumesRequest)
        return {"instance": _dump(a.detach_volumes(rq.path_params["id"], req.volume_ids))}

    @route("list_instances")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "instances", _in_region(rq, list(a.instances.values())))

    @route("create_instance")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"instance": _dump(a.create_instance(await _body(rq, wire_requests.DeploymentRequest)))}

    @route("get_instance")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"instance": _dump(a.instance(rq.path_params["id"]))}

    @route("delete_instance")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_instance(rq.path_params["id"])
        return {}

    for action in ("start", "stop", "reboot", "hibernate", "restore"):

        async def act(rq: Request, a: Account, action: str = action) -> dict[str, Any]:
            return {"instance": _dump(a.instance_action(rq.path_params["id"], action))}

        h[f"{action}_instance"] = act

    @route("set_public_ip")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.PublicIPRequest = await _body(rq, wire_requests.PublicIPRequest)
        return {"instance": _dump(a.set_public_ip(rq.path_params["id"], req.enabled))}

    @route("add_security_rule")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.AddFirewallRuleRequest = await _body(rq, wire_requests.AddFirewallRuleRequest)
        return {"rule": _dump(a.add_security_rule(rq.path_params["id"], req))}

    @route("remove_security_rule")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.remove_security_rule(rq.path_params["id"], rq.path_params["rule_id"])
        return {}

    @route("list_instance_firewalls")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "firewalls", a.instance_firewalls(rq.path_params["id"]))

    @route("list_firewall_protocols")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"protocols": [p.value for p in m.Protocol]}

    @route("list_firewalls")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "firewalls", _in_region(rq, list(a.firewalls.values())))

    @route("create_firewall")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"firewall": _dump(a.create_firewall(await _body(rq, wire_requests.CreateFirewallRequest)))}

    @route("get_firewall")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"firewall": _dump(a.firewall(rq.path_params["id"]))}

    @route("delete_firewall")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_firewall(rq.path_params["id"])
        return {}

    @route("add_firewall_rule")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.AddFirewallRuleRequest = await _body(rq, wire_requests.AddFirewallRuleRequest)
        return {"rule": _dump(a.add_firewall_rule(rq.path_params["id"], req))}

    @route("remove_firewall_rule")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.remove_firewall_rule(rq.path_params["id"], rq.path_params["rule_id"])
        return {}

    @route("attach_firewall")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req: wire_requests.AttachFirewallRequest = await _body(rq, wire_requests.AttachFirewallRequest)
        return {"firewall": _dump(a.attach_firewall(rq.path_params["id"], req.instance_ids))}

    @route("list_ssh_keys")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "ssh_keys", list(a.ssh_keys.values()))

    @route("create_ssh_key")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"ssh_key": _dump(a.create_ssh_key(await _body(rq, wire_requests.CreateSSHKeyRequest)))}

    @route("get_ssh_key")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"ssh_key": _dump(a.ssh_key(rq.path_params["id"]))}

    @route("delete_ssh_key")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.delete_ssh_key(rq.path_params["id"])
        return {}

    @route("list_scripts")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return _paged(rq, "scripts", list(a.scripts.items.values()))

    @route("create_script")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"script": _dump(a.scripts.create(await _body(rq, wire_requests.CreateScriptRequest)))}

    @route("get_script")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        return {"script": _dump(a.scripts.get(rq.path_params["id"]))}

    @route("update_script")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        req = await _body(rq, wire_requests.UpdateScriptRequest)
        return {"script": _dump(a.scripts.update(rq.path_params["id"], req))}

    @route("delete_script")
    async def _(rq: Request, a: Account) -> dict[str, Any]:
        a.scripts.delete(rq.path_params["id"], a.instances.values())
        return {}

    missing = ROUTES.keys() - h.keys()
    if missing:
        raise RuntimeError(f"simulator routes without a handler: {sorted(missing)}")
    return h


# Serving -----------------------------------------------------------------------------------------


def _error(sim: Simulator, status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body: dict[str, Any]
    if sim.dialect == "legacy":
        body = {"status": False, "message": message, "error_reason": code}
    else:
        body = {"success": False, "message": message, "error_code": code, "request_id": sim.request_id()}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _success(sim: Simulator, name: str, payload: dict[str, Any]) -> Response:
    faults = sim.faults.config
    if "total_pages" in payload and faults.pagination == "omit_total_pages":
        payload = {k: v for k, v in payload.items() if k != "total_pages"}
    elif "total_pages" in payload and faults.pagination == "understate_total_pages":
        payload = {**payload, "total_pages": 1}
    malformed = faults.malformed.get(name)
    if malformed:
        sim.faults.injected["malformed"] += 1
    if malformed == "json":
        return Response(b'{"success": true, "message": "OK", "trunc', media_type="application/json")
    if malformed == "shape":
        payload = dict.fromkeys(payload, "not what the contract says")
    if sim.dialect == "legacy":
        return JSONResponse({"status": True, "message": "OK", **payload})
    return JSONResponse({"success": True, "message": "OK", "request_id": sim.request_id(), **payload})


def _endpoint(sim: Simulator, name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    mutating = not ROUTES[name].is_read

    async def endpoint(request: Request) -> Response:
        sim.arrivals.append((time.monotonic(), name))
        response = await _serve(request)
        sim.calls[(name, response.status_code)] += 1
        # Barrack's time is the simulator's clock (pushed forward by /_sim/advance), as billing is.
        response.headers["date"] = formatdate(sim.account.wall_epoch(sim.account.clock.now()), usegmt=True)
        return response

    async def _serve(request: Request) -> Response:
        delay = sim.faults.config.latency_seconds + sim.faults.config.route_latency.get(name, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if sim.auth.key_from(request.headers) not in sim.api_keys:
            err = Unauthenticated("Invalid or missing API key")
            return _error(sim, err.status_code, err.error_code, err.message)
        wait = sim.faults.retry_after(sim.account.clock.now())
        if wait is not None:
            told = {"Retry-After": str(max(1, math.ceil(wait)))} if sim.dialect == "standard" else {}
            return _error(sim, 429, "rate_limited", "Too many requests", **told)
        if sim.faults.fail_before():
            return _error(sim, 500, "internal_error", "Internal server error")
        refusal = sim.faults.config.refuse.get(name)
        if refusal is not None:
            status = int(refusal["status"])
            after = refusal.get("retry_after")
            told = {"Retry-After": str(after)} if after is not None and sim.dialect == "standard" else {}
            code, message = refusal.get("error_code", "refused"), refusal.get("message", f"{name} refused")
            return _error(sim, status, str(code), str(message), **told)
        sim.account.tick()
        try:
            payload = await handler(request, sim.account)
        except SimError as err:
            return _error(sim, err.status_code, err.error_code, err.message)
        if mutating and sim.faults.fail_after_commit():
            return _error(sim, 500, "internal_error", "Internal server error")
        return _success(sim, name, payload)

    return endpoint


def peak_rate(arrivals: Iterable[float], window: float = 1.0) -> int:
    """The most requests that arrived within any ``window`` seconds (a sliding, half-open window)."""
    times = sorted(arrivals)
    best, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _stock_endpoint(sim: Simulator) -> Callable[[Request], Awaitable[Response]]:
    async def stock(request: Request) -> Response:
        """The GPU shelf: ``{"stock": [...], "steps": [...], "churn": [...]}`` (see
        :meth:`Shelf.configure`); answers the levels now."""
        shelf, now = sim.account.shelf, sim.account.clock.now()
        if request.method == "POST":
            try:
                shelf.configure(json.loads(await request.body() or b"{}"), now)
            except (KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"message": f"bad stock settings: {exc}"}, status_code=400)
        shelf.move(now)
        refusals = [{"name": n, "region": r, "at": at} for n, r, at in shelf.refusals]
        return JSONResponse(
            {
                "stock": shelf.listing(),
                "steps": len(shelf.steps),
                "churn": len(shelf.churn),
                "refusals": refusals,
            }
        )

    return stock


def _clock_endpoint(sim: Simulator) -> Callable[[Request], Awaitable[Response]]:
    async def clock(_: Request) -> Response:
        """The simulator's time (as its Date header gives it), what the account burns per hour now,
        and what it was billed so far, each record's status and cost (``records``)."""
        a = sim.account
        a.tick()
        records = [
            {"id": r.resource_id, "status": r.status, "minutes": r.minutes, "hourly": r.per_minute_rate * 60,
             "cost": r.cost, "start": r.start.isoformat(), "end": r.end.isoformat() if r.end else None}
            for rs in a.ledger.records.values() for r in rs
        ]  # fmt: skip
        now = datetime.fromtimestamp(a.wall_epoch(a.clock.now()), UTC).isoformat()
        billed = sum(r.cost for rs in a.ledger.records.values() for r in rs)
        return JSONResponse({"now": now, "burn": a.hourly_burn(), "billed": billed, "records": records})

    return clock


def _admin_routes(sim: Simulator) -> list[Route]:
    async def calls(_: Request) -> Response:
        return JSONResponse({f"{name} {status}": n for (name, status), n in sorted(sim.calls.items())})

    async def rate(_: Request) -> Response:
        offset = time.time() - time.monotonic()  # arrivals are monotonic; the counts are by wall second
        by_route: dict[int, Counter[str]] = {}
        for at, name in sim.arrivals:
            by_route.setdefault(int(at + offset), Counter())[name] += 1
        return JSONResponse(
            {
                "requests": len(sim.arrivals),
                "max_per_second": peak_rate([at for at, _ in sim.arrivals]),
                "per_wall_second": sorted((t, counts.total()) for t, counts in by_route.items()),
                "per_wall_second_by_route": sorted(by_route.items()),
            }
        )

    async def inventory(_: Request) -> Response:
        a = sim.account
        a.tick()
        return JSONResponse(
            {
                "volumes": [_dump(v) for v in a.volumes.values()],
                "instances": [_dump(i) for i in a.instances.values()],
                "firewalls": [_dump(f) for f in a.firewalls.values()],
                "ssh_keys": [_dump(k) for k in a.ssh_keys.values()],
                "scripts": [_dump(s) for s in a.scripts.items.values()],
                "snapshots": [_dump(s) for s in a.snapshots.values()],
                "images": [_dump(i) for i in a.custom_images.values()],
                "pending_transitions": a.pending(),
            }
        )

    async def settled(_: Request) -> Response:
        sim.account.tick()
        return JSONResponse([{"id": rid, "at": at} for rid, at in sim.account.settled])

    async def created(_: Request) -> Response:
        at = sim.account.created_at
        return JSONResponse(
            [{"id": i, "name": n, **({"at": at[i]} if i in at else {})} for i, n in sim.account.created]
        )

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            values = json.loads(await request.body() or b"{}")
            seed = values.pop("seed", None)
            try:
                sim.faults.config.update(values)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"message": str(exc)}, status_code=400)
            if seed is not None:
                sim.faults.reseed(int(seed))
        return JSONResponse({**sim.faults.config.as_dict(), "injected": sim.faults.injected})

    async def config(request: Request) -> Response:
        cfg = sim.account.config
        if request.method == "POST":
            values = json.loads(await request.body() or b"{}")
            for key in ("transition_seconds", "balance"):
                if key in values:
                    setattr(cfg, key, float(values[key]))
            if "snapshot_advanced_tier" in values:
                cfg.snapshot_advanced_tier = bool(values["snapshot_advanced_tier"])
            if "detach_rule" in values:
                if values["detach_rule"] not in ("shutoff", "active"):
                    return JSONResponse({"message": "detach_rule is shutoff or active"}, status_code=400)
                cfg.detach_rule = values["detach_rule"]
            cfg.transition_overrides.update(
                {k: float(v) for k, v in values.get("transition_overrides", {}).items()}
            )
            sim.account.shelf.configure({"stock": values.get("stock", [])}, sim.account.clock.now())
        return JSONResponse(
            {
                "transition_seconds": cfg.transition_seconds,
                "transition_overrides": cfg.transition_overrides,
                "detach_rule": cfg.detach_rule,
                "balance": cfg.balance,
                "hourly_burn": sim.account.hourly_burn(),
                "depleted": sim.account.depleted,
            }
        )

    async def top_up(request: Request) -> Response:
        """Add credit (``{"amount": 50}``); instances hibernated for want of it stay hibernated
        until restored."""
        values = json.loads(await request.body() or b"{}")
        balance = sim.account.top_up(float(values.get("amount", 0)))
        return JSONResponse({"balance": balance, "currency": sim.account.config.currency})

    async def advance(request: Request) -> Response:
        values = json.loads(await request.body() or b"{}")
        sim.account.clock.advance(float(values.get("seconds", 0)))
        sim.account.tick()
        return JSONResponse({"pending_transitions": sim.account.pending()})

    async def state(request: Request) -> Response:
        """Put a resource into any state word, known or not (``{"id": ..., "status": ...}``), as
        Barrack might report it: ERROR, DELETED, or a word the contract does not name."""
        values = json.loads(await request.body() or b"{}")
        a = sim.account
        for resources in (a.volumes, a.instances, a.firewalls, a.ssh_keys, a.snapshots, a.custom_images):
            resource = resources.get(str(values.get("id")))
            if resource is not None:
                resource.status = str(values.get("status", "")).upper()
                return JSONResponse(_dump(resource))
        return JSONResponse({"message": f"no resource {values.get('id')}"}, status_code=404)

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return [
        Route("/calls", calls, methods=["GET"]),
        Route("/rate", rate, methods=["GET"]),
        Route("/inventory", inventory, methods=["GET"]),
        Route("/created", created, methods=["GET"]),
        Route("/settled", settled, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "POST"]),
        Route("/config", config, methods=["GET", "POST"]),
        Route("/advance", advance, methods=["POST"]),
        Route("/clock", _clock_endpoint(sim), methods=["GET"]),
        Route("/top-up", top_up, methods=["POST"]),
        Route("/stock", _stock_endpoint(sim), methods=["GET", "POST"]),
        Route("/state", state, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ]


def create_app(sim: Simulator) -> Starlette:
    handlers = _handlers()
    api = [
        Route(route.path, _endpoint(sim, name, handlers[name]), methods=[route.method.value], name=name)
        for name, route in ROUTES.items()
    ]
    # Static paths before templated ones, so /firewalls/protocols/ is not read as /firewalls/{id}/.
    api.sort(key=lambda r: "{" in r.path)
    app = Starlette(routes=[Mount("/api", routes=api), Mount("/_sim", routes=_admin_routes(sim))])
    app.state.simulator = sim
    return app
