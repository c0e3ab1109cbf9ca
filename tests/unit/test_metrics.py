"""The metrics a scrape computes from the operator's own state."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from barrack_operator import metrics


def test_a_scrape_counts_the_objects_by_kind_and_readiness_in_one_pass() -> None:
    # A pass per kind and readiness made a scrape at 10,000 objects cost about a second of the
    # GIL, taken from the event loop while the rate limiter's grants waited.
    passes: list[int] = []

    def readiness() -> list[tuple[str, bool]]:
        passes.append(1)
        return [("BarrackVolume", True), ("BarrackVolume", False), ("BarrackVolume", True)]

    metrics.watch_objects(["BarrackVolume", "BarrackInstance"], readiness)
    text = generate_latest(REGISTRY).decode()
    assert passes == [1]
    assert 'barrack_objects{kind="BarrackVolume",ready="true"} 2.0' in text
    assert 'barrack_objects{kind="BarrackVolume",ready="false"} 1.0' in text
    assert 'barrack_objects{kind="BarrackInstance",ready="true"} 0.0' in text
    assert 'barrack_objects{kind="BarrackInstance",ready="false"} 0.0' in text
