"""A fault-injecting proxy in front of the dev cluster's kube-apiserver, for the Kubernetes fault
tests. The operator talks to it over plain HTTP on loopback (a kubeconfig from
:meth:`KubeFaultProxy.write_kubeconfig`); it forwards every request to the real apiserver with the
admin client certificate and streams the reply back, watches included. On top it can:

- cut every open watch stream at once (:meth:`cut_watches`), as a load balancer or an apiserver
  going away does;
- answer a share of status writes with 409 Conflict (``conflict_rate``), the reply the apiserver
  gives a write made against a stale resourceVersion;
- answer 503 while the apiserver itself is down, as a front proxy would.

It runs its own event loop in a daemon thread, so a synchronous test drives it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from barrack_operator.devcluster.cluster import ControlPlane, free_port

HOP_BY_HOP = {
    "authorization",
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


class KubeFaultProxy:
    def __init__(self, plane: ControlPlane, *, conflict_rate: float = 0.0, seed: int = 0) -> None:
        self.plane = plane
        self.conflict_rate = conflict_rate
        self.injected: Counter[str] = Counter()
        self.partitioned = False
        self.port = free_port()
        self._rng = random.Random(seed)
        self._watches: dict[asyncio.Task[Any], web.BaseRequest] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def partition(self, cut_off: bool = True) -> None:
        """Cut the proxy's clients off the apiserver (every request 503, open watches closed), or
        let them through again: a network partition as the operator behind it sees it."""
        self.partitioned = cut_off
        if cut_off:
            self.cut_watches()

    def cut_watches(self) -> int:
        """Close every open watch stream abruptly; returns how many were cut."""
        cut: int = asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(timeout=30)
        return cut

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for the proxy. The token is a placeholder: the proxy drops it and forwards
        with the admin certificate."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "proxy", "user": {"token": "placeholder-token"}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # The loop side ---------------------------------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.plane.ssl_context()),
            timeout=aiohttp.ClientTimeout(total=None, connect=5),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self._cut()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _cut(self) -> int:
        watches = list(self._watches.items())
        for task, request in watches:
            if request.transport is not None:
                request.transport.abort()
            task.cancel()
        self.injected["watches_cut"] += len(watches)
        return len(watches)

    def _conflict(self, request: web.BaseRequest) -> bool:
        if request.method not in ("PATCH", "PUT") or not request.path.endswith("/status"):
            return False
        if self._rng.random() >= self.conflict_rate:
            return False
        self.injected["status_conflicts"] += 1
        return True

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.partitioned:
            self.injected["partitioned"] += 1
            return _status(503, "ServiceUnavailable", "partitioned from the apiserver")
        if self._conflict(request):
            name = request.path.rstrip("/").split("/")[-2]
            return _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        try:
            upstream = await self._session.request(
                request.method, self.plane.url + request.path_qs, headers=headers, data=body or None
            )
        except (aiohttp.ClientError, OSError):
            self.injected["unavailable"] += 1
            return _status(503, "ServiceUnavailable", "the apiserver behind the proxy is not reachable")
        async with upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            await response.prepare(request)
            task = asyncio.current_task()
            watch = request.query.get("watch") in ("true", "1") and task is not None
            if watch:
                assert task is not None
                self._watches[task] = request
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (aiohttp.ClientError, ConnectionError):
                pass  # either side went away; the other is closed with it
            finally:
                if watch:
                    assert task is not None
                    self._watches.pop(task, None)
            return response

    def __enter__(self) -> KubeFaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
