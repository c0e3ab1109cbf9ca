"""Account lifecycle: the accounts in use by name, each with its client, inventory and supervised
poller, kept as the BarrackAccounts say (an account appears, changes or goes; ``default`` is the
operator's own key until a BarrackAccount of that name exists), and which account an object may
use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from barrack_operator.accounts import AccountConfig, AccountRuntime, InvalidAccount, SecretKeySource
from barrack_operator.barrack import ApiKeySource
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.errors import Unauthorized
from barrack_operator.conditions import READY, Condition, Reason
from barrack_operator.engine.lease import operator_namespace
from barrack_operator.engine.money import MoneyWatcher
from barrack_operator.inventory import Inventory
from barrack_operator.kube import StatusWriter
from barrack_operator.resources.common import blocked
from barrack_operator.resources.model import ObjectView, Outcome, Timing
from barrack_operator.resources.specs import DEFAULT_ACCOUNT, account_name
from barrack_operator.settings import Settings

log = logging.getLogger(__name__)


class AccountSet:
    def __init__(
        self,
        settings: Settings,
        kube: Callable[[], StatusWriter | None],
        timing: Timing,
        runtime_options: dict[str, Any],
    ) -> None:
        self.settings = settings
        self._kube = kube
        self.timing = timing
        self._options = runtime_options
        """What every AccountRuntime is built with (the registry, memory, timing, callbacks)."""
        self.by_name: dict[str, AccountRuntime] = {}
        """The accounts in use by name (one dict for the process's life)."""
        self.specs: dict[str, AccountConfig] = {}
        """Accounts declared by BarrackAccount objects."""
        self._problems: dict[str, str] = {}
        self.money: MoneyWatcher | None = None
        self.use(AccountConfig.from_settings(settings))

    @property
    def default(self) -> AccountRuntime:
        return self.by_name[DEFAULT_ACCOUNT]

    def inventories(self) -> dict[str, Inventory]:
        """The inventories that /readyz judges: every account's but those whose key is missing or
        refused (a configuration problem the account's status shows, not the pod's)."""
        return {
            name: account.inventory
            for name, account in self.by_name.items()
            if not isinstance(account.balance_error, Unauthorized | MissingApiKey)
        }

    def poller_alive(self) -> bool:
        return all(account.poller_alive() for account in self.by_name.values())

    def use(self, config: AccountConfig) -> AccountRuntime:
        """Build (not start) the runtime of an account; it replaces one of the same name."""
        if config.secret is not None:
            kube = self._kube()
            assert kube is not None, "accounts from Secrets are read once the operator runs"
            key_source: ApiKeySource | SecretKeySource = SecretKeySource(
                kube, operator_namespace(self.settings), *config.secret
            )
        else:
            key_source = ApiKeySource(key_file=config.key_file)
        account = AccountRuntime(config, self.settings, key_source=key_source, **self._options)
        self.by_name[config.name] = account
        return account

    async def on_event(self, body: dict[str, Any], event_type: str | None) -> None:
        """A BarrackAccount appeared, changed or went: use it from the next call on."""
        assert self.money is not None
        name = body.get("metadata", {}).get("name", "")
        if event_type == "DELETED":
            self.specs.pop(name, None)
            self._problems.pop(name, None)
            await self._drop(name)
            return
        self.money.seen(name, body)
        try:
            config = AccountConfig.from_spec(name, dict(body.get("spec") or {}))
        except InvalidAccount as exc:
            problem = f"BarrackAccount {name} is invalid ({exc}); no Barrack call is made for its objects"
            self._problems[name] = problem
            self.specs.pop(name, None)
            await self._drop(name)
            await self.money.write_account(name, {}, [Condition(READY, False, Reason.INVALID_SPEC, problem)])
            return
        self._problems.pop(name, None)
        self.specs[name] = config
        current = self.by_name.get(name)
        if current is not None and current.config.connection() == config.connection():
            current.config = config  # budget, namespaces, thresholds: no new client needed
            return
        log.info("Account %s: using %s (rate %g/s)", name, config.api_url, config.requests_per_second)
        self.use(config).start()
        if current is not None:
            await current.stop()  # a pass waiting on it runs again on the new one (InventoryClosed)
        self.money.now()

    async def _drop(self, name: str) -> None:
        """Stop using an account; ``default`` falls back to the operator's own key."""
        current = self.by_name.pop(name, None)
        if name == DEFAULT_ACCOUNT:
            self.use(AccountConfig.from_settings(self.settings)).start()
        if current is not None:
            await current.stop()

    def account_of(self, obj: ObjectView) -> AccountRuntime | Outcome:
        """The account the object uses, or why it cannot use one: no such BarrackAccount (or an
        invalid one), or one its namespace may not use. Either way no Barrack call is made."""
        name = account_name(obj.spec)
        account = self.by_name.get(name)
        if account is None:
            reason, message = (
                Reason.ACCOUNT_NOT_FOUND,
                self._problems.get(name)
                or (
                    f"there is no BarrackAccount named {name}: create it, or set spec.accountRef to an existing "
                    "one; no Barrack call is made meanwhile"
                ),
            )
        elif not account.config.allows(obj.namespace):
            reason = Reason.ACCOUNT_NOT_ALLOWED
            message = (
                f"namespace {obj.namespace} may not use BarrackAccount {name} (its allowedNamespaces: "
                f"{', '.join(account.config.allowed_namespaces)}); no Barrack call is made: use another "
                "account in spec.accountRef, or add the namespace to the account"
            )
        else:
            return account
        return blocked(Outcome(), reason, message, self.timing, ready=True)
