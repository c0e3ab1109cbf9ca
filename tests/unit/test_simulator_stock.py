"""The simulator's GPU shelf: creates take GPUs and deletions and hibernations give them back;
levels set for later, churn that takes a model away and brings it back on the simulator's clock,
and phantom GPUs a listing shows that no create can have."""

from __future__ import annotations

import pytest

from barrack_sim.errors import Conflict
from barrack_sim.stock import Shelf

KEY = ("US-1", "A40")


def test_take_and_give() -> None:
    shelf = Shelf({KEY: 2})
    shelf.take("US-1", "A40", 2)
    with pytest.raises(Conflict) as refused:
        shelf.take("US-1", "A40", 1)
    assert refused.value.error_code == "out_of_stock"
    shelf.give("US-1", "A40", 1)
    assert shelf.available[KEY] == 1


def test_steps_and_churn_move_the_shelf_on_its_clock() -> None:
    shelf = Shelf({KEY: 0})
    shelf.configure({"steps": [{"after": 30, "region": "US-1", "gpu_model": "A40", "available": 5}]}, now=100)
    shelf.move(129)
    assert shelf.available[KEY] == 0
    shelf.move(130)
    assert shelf.available[KEY] == 5 and not shelf.steps
    shelf.configure(
        {"churn": [{"region": "US-1", "gpu_model": "A40", "low": 0, "high": 4, "period": 60}]}, now=200
    )
    assert shelf.available[KEY] == 4
    shelf.take("US-1", "A40", 3)
    shelf.move(250)  # the same phase: what was taken stays taken
    assert shelf.available[KEY] == 1
    shelf.move(260)
    assert shelf.available[KEY] == 0
    shelf.move(320)
    assert shelf.available[KEY] == 4
    shelf.configure({"churn": [{"region": "US-1", "gpu_model": "A40", "period": 0}]}, now=330)
    assert not shelf.churn


def test_phantom_gpus_are_listed_but_never_had() -> None:
    shelf = Shelf({KEY: 0})
    shelf.configure({"phantom": [{"region": "US-1", "gpu_model": "A40", "available": 3}]}, now=0)
    assert shelf.listing() == [{"region": "US-1", "gpu_model": "A40", "available": 3}]
    with pytest.raises(Conflict):
        shelf.take("US-1", "A40", 1)
