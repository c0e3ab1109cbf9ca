"""The health endpoints the chart's probes use, served in the operator's own event loop.

``/healthz`` (liveness) answers 200 while the event loop answers (kopf's loop: the server runs in
it) and the inventory poller task is alive; a dead poller means no object is ever looked at again,
so the kubelet should restart the pod. ``/readyz`` (readiness) answers 200 while every kind's last
successful listing is younger than a bound: an operator that cannot see Barrack should not be
counted as serving. Both bodies say why, in one line of JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from barrack_operator.inventory import Inventory


class HealthServer:
    def __init__(
        self,
        inventories: Callable[[], dict[str, Inventory]],
        poller_alive: Callable[[], bool],
        max_listing_age: float,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self._leading = leading
        self._inventories = inventories
        self._poller_alive = poller_alive
        self._max_age = max_listing_age
        self._runner: web.AppRunner | None = None

    def liveness(self) -> tuple[bool, dict[str, object]]:
        if not self._leading():
            return True, {"role": "standby"}  # a standby polls nothing; its loop answers
        alive = self._poller_alive()
        return alive, {"poller": "running" if alive else "dead"}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        if not self._leading():
            return True, {"role": "standby"}  # ready to take over; counts for a disruption budget
        ages: dict[str, dict[str, object]] = {}
        ready = True
        for account, inventory in self._inventories().items():
            ages[account] = {}
            for kind in inventory.kinds:
                age = inventory.age(kind)
                ages[account][kind] = None if age is None else round(age, 1)
                if age is None or age > self._max_age:
                    ready = False
        return ready and self._poller_alive(), {"listing_age_seconds": ages, "bound": self._max_age}

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._answer(self.liveness))
        app.router.add_get("/readyz", self._answer(self.readiness))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _answer(
        check: Callable[[], tuple[bool, dict[str, object]]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(_: web.Request) -> web.StreamResponse:
            ok, details = check()
            return web.json_response({"ok": ok, **details}, status=200 if ok else 503)

        return handler
