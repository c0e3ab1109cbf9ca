"""Serve the simulator over HTTP with uvicorn (``barrack-operator sim``)."""

from __future__ import annotations

import logging

import uvicorn

from barrack_sim.account import Account, DetachRule, SimConfig
from barrack_sim.app import Dialect, Simulator, create_app
from barrack_sim.faults import FaultConfig, FaultInjector


def build_simulator(
    *,
    api_keys: list[str],
    transition_seconds: float,
    transition_overrides: dict[str, float] | None = None,
    detach_rule: DetachRule = "shutoff",
    balance: float = 1000.0,
    seed: int = 0,
    faults: FaultConfig | None = None,
    dialect: Dialect = "standard",
    first_id: int = 100001,
) -> Simulator:
    if not api_keys:
        raise ValueError("the simulator needs at least one accepted API key")
    config = SimConfig(
        transition_seconds=transition_seconds,
        transition_overrides=dict(transition_overrides or {}),
        detach_rule=detach_rule,
        balance=balance,
        first_id=first_id,
    )
    return Simulator(
        account=Account(config),
        api_keys=set(api_keys),
        faults=FaultInjector(config=faults or FaultConfig(), seed=seed),
        dialect=dialect,
    )


def serve(simulator: Simulator, host: str, port: int, log_level: str = "warning") -> None:
    logging.getLogger("uvicorn.access").disabled = log_level != "debug"
    uvicorn.run(  # the Date header is the simulator's clock (see app.py), not uvicorn's
        create_app(simulator), host=host, port=port, log_level=log_level, lifespan="off", date_header=False
    )
