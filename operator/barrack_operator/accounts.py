"""Barrack accounts, kopf-free: what an account is (:class:`AccountConfig`, from a BarrackAccount
or from the operator's own settings), where its key comes from (a Secret in the operator's
namespace, re-read so that a changed key is used from the next call on; or the key file), and
everything the operator keeps per account (:class:`AccountRuntime`): its client and rate limiter,
its inventory and supervised poller, its prices and billing figures, and its balance.

Steady Barrack calls stay one listing per kind per poll per account.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from barrack_operator.barrack import ApiKeySource, BarrackClient, BarrackError
from barrack_operator.barrack import models as m
from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.routes import Auth
from barrack_operator.budgets import (
    namespace_burns,
    over_namespace_budget,
)
from barrack_operator.capacity import CapacityBoard
from barrack_operator.conditions import CREDITS_LOW, READY, Condition, Reason
from barrack_operator.costs import Accruals, Demand, PriceBook, committed_hourly, demand_hourly, runway_hours
from barrack_operator.inventory import Inventory
from barrack_operator.month import Month
from barrack_operator.resources.account_spec import BarrackAccountSpec
from barrack_operator.resources.common import failure_reason
from barrack_operator.resources.model import Context, Memory, OverBudget, References, Timing
from barrack_operator.resources.specs import DEFAULT_ACCOUNT
from barrack_operator.settings import Settings

log = logging.getLogger(__name__)
SECRET_REREAD_SECONDS = 2.0
"""A key from a Secret is read again when older than this: a rotated key is used from then on."""


class InvalidAccount(ValueError):
    """A BarrackAccount spec the operator cannot use; the message names the field."""


@dataclass(frozen=True)
class AccountConfig:
    name: str
    api_url: str
    auth: Auth
    requests_per_second: float
    burst: int
    allowed_namespaces: tuple[str, ...] = ()
    credits_low_hours: float = 72.0
    max_hourly_spend: float | None = None
    namespace_budgets: tuple[tuple[str, float], ...] = ()
    monthly_budget: float | None = None
    secret: tuple[str, str] | None = None
    """(Secret name, key) in the operator's namespace; None: the operator's own key (file or env)."""
    key_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountConfig:
        """The account ``default`` as the operator's settings give it (key file or environment)."""
        return cls(
            name=DEFAULT_ACCOUNT,
            api_url=settings.api_url,
            auth=settings.auth,
            requests_per_second=settings.requests_per_second,
            burst=settings.burst,
            key_file=settings.api_key_file,
        )

    @classmethod
    def from_spec(cls, name: str, spec: dict[str, Any]) -> AccountConfig:
        try:
            parsed = BarrackAccountSpec.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidAccount(f"spec.{where}: {first['msg']}") from None
        scheme = "" if parsed.auth.scheme.lower() == "none" else parsed.auth.scheme
        return cls(
            name=name,
            api_url=parsed.apiUrl,
            auth=Auth(header=parsed.auth.header, scheme=scheme),
            requests_per_second=parsed.rateLimit.requestsPerSecond,
            burst=parsed.rateLimit.burst,
            allowed_namespaces=tuple(parsed.allowedNamespaces),
            credits_low_hours=parsed.creditsLowHours,
            max_hourly_spend=parsed.maxHourlySpend,
            namespace_budgets=tuple((b.namespace, b.maxHourlySpend) for b in parsed.namespaceBudgets),
            monthly_budget=parsed.monthlyBudget,
            secret=(parsed.secretRef.name, parsed.secretRef.key),
        )

    def allows(self, namespace: str) -> bool:
        return not self.allowed_namespaces or namespace in self.allowed_namespaces

    def connection(self) -> tuple[object, ...]:
        """What the client is built from: a change of any of it builds a new client."""
        return (self.api_url, self.auth, self.requests_per_second, self.burst, self.secret, self.key_file)


class SecretReader(Protocol):
    async def request_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]: ...


@dataclass
class SecretKeySource:
    """The API key from a Secret's key, read through the apiserver (``get`` on Secrets in the
    operator's namespace is all the RBAC it needs) and read again when older than
    ``SECRET_REREAD_SECONDS``. The key is never part of a repr, a log line or an error."""

    kube: SecretReader
    namespace: str
    name: str
    key: str
    clock: Callable[[], float] = time.monotonic
    _value: str | None = field(default=None, repr=False)
    _read_at: float | None = field(default=None, repr=False)
    _problem: str | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def get(self) -> str:
        if self._value:
            return self._value
        raise MissingApiKey(
            self._problem or f"the API key in Secret {self.namespace}/{self.name} is not read yet", self.fix()
        )

    def fix(self) -> str:
        return (
            f"put a valid key under {self.key!r} in Secret {self.namespace}/{self.name} (the BarrackAccount's "
            f"secretRef); it is read again within {SECRET_REREAD_SECONDS:.0f}s, no restart"
        )

    async def aget(self) -> str:
        if self._read_at is None or self.clock() - self._read_at >= SECRET_REREAD_SECONDS:
            async with self._lock:
                if self._read_at is None or self.clock() - self._read_at >= SECRET_REREAD_SECONDS:
                    await self._read()
        return self.get()

    async def _read(self) -> None:
        where = f"Secret {self.namespace}/{self.name}"
        try:
            status, body = await self.kube.request_json(
                "GET", f"/api/v1/namespaces/{self.namespace}/secrets/{self.name}"
            )
        except Exception as exc:  # the apiserver away: keep the key read last
            log.warning("Reading the API key in %s failed: %s", where, type(exc).__name__)
            return
        self._read_at = self.clock()
        if status != 200:
            self._value, self._problem = None, f"cannot read the API key: {where} answered {status}"
            return
        raw = (body.get("data") or {}).get(self.key)
        try:
            value = base64.b64decode(raw).decode().strip() if raw else ""
        except (binascii.Error, UnicodeDecodeError):
            value = ""
        self._value = value or None
        self._problem = None if value else f"{where} has no key {self.key!r} (or it is empty)"


Observer = Callable[["AccountRuntime", str, str, float], None]


class AccountRuntime:
    """What the operator keeps for one account."""

    def __init__(
        self,
        config: AccountConfig,
        settings: Settings,
        *,
        key_source: ApiKeySource | SecretKeySource,
        refs: References,
        memory: Memory,
        timing: Timing,
        observe: Observer,
        fence: Callable[[], None],
        on_change: Callable[[set[str]], None],
        wake: Callable[[str], None] = lambda uid: None,
        clock: BarrackClock | None = None,
        **hooks: Any,
    ) -> None:
        """``hooks`` are the Context's callbacks into the runtime (mark_create, power, read_config_map)."""
        self.config = config
        self.settings = settings
        self.key_source = key_source
        self.client = BarrackClient(
            config.api_url,
            key_source,
            auth=config.auth,
            requests_per_second=config.requests_per_second,
            burst=config.burst,
            observer=lambda route, code, seconds: observe(self, route, code, seconds),
            mutation_guard=fence,
            clock=clock,
        )
        self.inventory = Inventory(
            self.client,
            fast_interval=settings.poll_interval,
            slow_interval=settings.idle_poll_interval,
            on_change=on_change,
        )
        self.prices = PriceBook(self.client, refresh_seconds=settings.prices_interval)
        self.accruals = Accruals(self.client, interval=settings.billing_interval, now=self.client.clock.now)
        self.capacity = CapacityBoard(self.client, self.prices, interval=settings.poll_interval, wake=wake)
        self.context = Context(self.client, self.inventory, refs, memory, timing, admit=self.admit,
                               credits_depleted=self.credits_depleted, capacity=self.capacity,
                               held_off=self.hold_off, barrack_clock=self.client.clock, **hooks)  # fmt: skip
        self.held_off: set[str] = set()  # instances held off by a schedule or lifetime (saving_per_hour)
        self.month: Month | None = None  # the calendar month so far (the money watcher counts it)
        self.balance: m.BalanceResponse | None = None
        self.balance_error: BarrackError | MissingApiKey | None = None
        self.burn: float | None = None
        self._poller: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.stopping = False
        """The operator is stopping: the poller's end (kopf cancels what began while it ran) is
        expected, not restarted and not logged as an error."""
        self._image_names: dict[str, str] = {}
        self._budget_lock = asyncio.Lock()
        self._reservations: dict[str, tuple[str, float, float]] = {}
        """Admitted creates and power-ons: key → (listing, per hour, when), until listed."""
        self._reserved_for: dict[str, str | None] = {}  # per reservation, its namespace if budgeted
        self.namespace_burns: list[dict[str, object]] = []
        """Each budgeted namespace's burn, for the account's status."""

    def hold_off(self, barrack_id: str, held: bool) -> None:
        (self.held_off.add if held else self.held_off.discard)(barrack_id)

    def saving_per_hour(self) -> float:
        """What the instances held off save per hour now: their full price less what they cost."""
        saved = 0.0
        for barrack_id in list(self.held_off):
            item = self.inventory.instances.items.get(barrack_id)
            if item is None:
                self.held_off.discard(barrack_id)
                continue
            full = self.prices.full_instance_hourly(item.gpu_model, item.gpu_count)
            now = self.prices.instance_hourly(item)
            if full is not None and now is not None:
                saved += max(0.0, full - now)
        return saved

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        self._supervisor = asyncio.create_task(
            self._supervise_poller(), name=f"barrack-inventory-{self.name}"
        )

    def poller_alive(self) -> bool:
        return self._poller is not None and not self._poller.done()

    async def _supervise_poller(self) -> None:
        """Run the inventory poller, and start it again should it ever end (it is built not to):
        without it no object of the account is looked at again."""
        restarts = 0
        while True:
            self._poller = asyncio.create_task(self.inventory.run(), name=f"barrack-poller-{self.name}")
            try:
                await self._poller
                log.error("The Barrack inventory poller of account %s ended; starting it again", self.name)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self.stopping or (current is not None and current.cancelling()):
                    raise  # the account or the operator stops
                log.error(
                    "The Barrack inventory poller of account %s was cancelled; starting it again", self.name
                )
            except Exception:
                log.exception(
                    "The Barrack inventory poller of account %s failed; starting it again", self.name
                )
            restarts += 1
            await asyncio.sleep(min(30.0, self.settings.poll_interval * 2 ** min(restarts, 5)))

    async def stop(self) -> None:
        await self.inventory.close()
        await self.capacity.stop()
        tasks = [task for task in (self._supervisor, self._poller) if task is not None]
        for task in tasks:  # each asked directly: the supervisor's cancel reaches the poller only through it
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping: its end is not news
                await task
        await self.client.aclose()

    async def image_name(self, instance: m.VMInstance) -> str | None:
        """The name of the OS image the instance booted from (listed once per region)."""
        if not instance.image_id:
            return None
        if instance.image_id not in self._image_names:
            with contextlib.suppress(BarrackError, MissingApiKey):
                for image in await self.client.list_os_images(instance.region):
                    self._image_names[image.id] = image.name
        return self._image_names.get(instance.image_id)

    async def rejudge_burn(self) -> bool:
        """The burn from what the inventory lists now, at the prices known (no balance read, and a
        price asked only when it is not known); True when the credit is low by it."""
        if self.balance is None:
            return False
        with contextlib.suppress(BarrackError, MissingApiKey):
            self.burn = await self._burn_now()
        return self.credits_low()

    async def _burn_now(self) -> float | None:
        """What the resources the inventory lists cost per hour in their states now."""
        return await self.prices.burn(
            self.inventory.instances.items.values(),
            self.inventory.volumes.items.values(),
            snapshots=self.inventory.snapshots.items.values(),
        )

    def runway(self) -> float | None:
        """Hours the balance lasts at the burn now; None while either is unknown, or nothing burns."""
        if self.balance is None or self.burn is None:
            return None
        return runway_hours(self.balance.balance, self.burn)

    def credits_low(self) -> bool:
        """The runway at the burn now is below creditsLowHours (when Barrack hibernates every
        instance is near): the one decision the account's CreditsLow, its gauge and the close
        watch of its instances all read."""
        hours = self.runway()
        return hours is not None and hours < self.config.credits_low_hours

    def credits_depleted(self) -> bool:
        """Barrack said the balance is spent (at the last look, each idle poll interval)."""
        return self.balance is not None and self.balance.balance <= 0

    async def admit(self, key: str, demand: Demand) -> None:
        """The budget guard (``Context.admit``): refuse (OverBudget) what would raise the account's
        committed burn above maxHourlySpend, or its namespace's above its namespaceBudgets entry;
        else reserve it until a listing begun after it shows the resource. One decision at a
        time, so that concurrent creates cannot pass on the same headroom."""
        limit = self.config.max_hourly_spend
        budgets = dict(self.config.namespace_budgets)
        namespace = self.context.refs.namespace_of(key) if budgets else None
        if limit is None and namespace not in budgets:
            return
        async with self._budget_lock:
            asked = await demand_hourly(self.prices, demand)
            now = await self.committed_burn() if limit is not None else 0.0
            if now is None or asked is None:
                raise OverBudget(
                    "Barrack's prices are not known yet, so the account's budget (maxHourlySpend) cannot be "
                    "judged; nothing was created or started; the operator asks again"
                )
            currency = self.prices.currency
            if limit is not None and now + asked > limit + 1e-9:
                raise OverBudget(
                    f"this would raise account {self.name}'s burn to {now + asked:.2f} {currency}/h: now "
                    f"{now:.2f}, this asks {asked:.2f}, the limit (maxHourlySpend) is {limit:.2f}; nothing was "
                    "called: it goes ahead by itself once demand falls or the budget rises"
                )
            if namespace in budgets:
                assert namespace is not None
                spent = await self.namespace_burn(namespace)
                why = over_namespace_budget(
                    self.name, namespace, spent or 0.0, asked, budgets[namespace], currency
                )
                if spent is None or why is not None:
                    raise OverBudget(why or "Barrack's prices are not known yet; the operator asks again")
            self._reservations[key] = (demand.listing, asked, time.monotonic())
            self._reserved_for[key] = namespace

    async def namespace_burn(self, namespace: str) -> float | None:
        """What the namespace's resources on this account will cost per hour once settled, with
        what was admitted for it that no listing shows yet."""
        ids = self.context.refs.ids_in(namespace)
        listed = await self._committed_listed(lambda barrack_id: barrack_id in ids)
        self.committed_reserved()  # drops reservations a listing now shows
        reserved = sum(
            hourly
            for key, (_, hourly, _) in self._reservations.items()
            if self._reserved_for.get(key) == namespace
        )
        return None if listed is None else listed + reserved

    async def committed_burn(self) -> float | None:
        """What the account will burn per hour once every resource settles: instances in full
        unless hibernated or going, volumes by size and type, and admitted creates and power-ons
        no listing has shown yet."""
        listed = await self._committed_listed(lambda barrack_id: True)
        reserved = self.committed_reserved()
        return None if listed is None else listed + reserved

    async def _committed_listed(self, wanted: Callable[[str], bool]) -> float | None:
        """What the listed resources ``wanted`` takes will cost per hour once settled."""
        inventory = self.inventory
        return await self.prices.burn(
            (i for k, i in inventory.instances.items.items() if wanted(k)),
            (v for k, v in inventory.volumes.items.items() if wanted(k)),
            instance_price=lambda instance: committed_hourly(self.prices, instance),
            snapshots=(s for k, s in inventory.snapshots.items.items() if wanted(k)),
        )

    def committed_reserved(self) -> float:
        """What was admitted and no listing shows yet (a listing begun after it counts it itself)."""
        reserved = 0.0
        for key, (listing, hourly, at) in list(self._reservations.items()):
            if getattr(self.inventory, listing).started_at > at:
                del self._reservations[key]
                self._reserved_for.pop(key, None)
            else:
                reserved += hourly
        return reserved

    async def refresh_money(self) -> None:
        """Ask the balance and price what the account holds now (burn per hour)."""
        try:
            self.balance = await self.client.get_balance()
            self.balance_error = None
        except (BarrackError, MissingApiKey) as exc:
            self.balance_error = exc
            return
        self.prices.set_currency(self.balance.currency)
        try:
            self.burn = await self._burn_now()
            budgets = dict(self.config.namespace_budgets)
            burns = {ns: await self.namespace_burn(ns) for ns in budgets}
            self.namespace_burns = namespace_burns(budgets, burns)
        except (BarrackError, MissingApiKey) as exc:
            self.balance_error = exc


def account_conditions(account: AccountRuntime) -> tuple[dict[str, Any], list[Condition]]:
    """The status fields and conditions of a BarrackAccount from what the operator knows of it:
    Ready (Barrack answers with this key), CreditsLow (runway below creditsLowHours)."""
    fields: dict[str, Any] = {}
    conditions: list[Condition] = []
    error = account.balance_error
    if isinstance(error, MissingApiKey):
        conditions.append(Condition(READY, False, Reason.UNAUTHORIZED, f"{error}; {error.fix}"))
    elif isinstance(error, BarrackError):
        reason, message = failure_reason(error)
        conditions.append(Condition(READY, False, reason, message))
    elif account.balance is None:
        conditions.append(Condition(READY, False, Reason.PROGRESSING, "asking Barrack for the balance"))
    else:
        note = f"; {account.prices.error}" if account.prices.error else ""
        conditions.append(
            Condition(READY, True, Reason.AVAILABLE, f"Barrack answers with this account's key{note}")
        )
    fields["namespaces"] = account.namespace_burns
    if account.balance is not None:
        fields["balance"] = round(account.balance.balance, 4)
        fields["currency"] = account.balance.currency
        if account.burn is not None:
            fields["burnPerHour"] = round(account.burn, 6)
            hours = account.runway()
            fields["runwayHours"] = None if hours is None else round(hours, 2)
            low = account.credits_low()
            if low and hours is not None:
                message = (
                    f"{hours:.1f} hours of credit left at {account.burn:.2f} {account.balance.currency}/h "
                    f"(below {account.config.credits_low_hours:g}); top up before it runs out: then Barrack "
                    "hibernates every instance"
                )
            else:
                message = "no resource burns credit" if hours is None else f"{hours:.1f} hours of credit left"
            conditions.append(
                Condition(CREDITS_LOW, low, Reason.CREDITS_LOW if low else Reason.CREDITS_OK, message)
            )
    return fields, conditions
