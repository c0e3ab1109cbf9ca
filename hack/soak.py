#!/usr/bin/env python3
"""Soak: the crash and Barrack-fault rounds of the reliability tests, for many rounds or minutes.

Starts a dev control plane, the simulator and the operator, then runs seeded rounds of a random
workload (volumes created, attached, detached, resized, deleted; instances, firewalls, SSH keys
created and deleted; hosts stopped and started). In each round the operator is SIGKILLed at a
random moment and restarted (sometimes twice), and the simulator answers a share of calls with
500, commits a share of mutations then answers 500, adds latency, and in some rounds cuts its rate
limit to a few requests a second, or has one kind's listing answer malformed replies for a while;
creates are slowed, and some objects are deleted right after they are applied (their creates in
flight). Each round waits for convergence, then audits Barrack. At the
end every object is deleted and Barrack is audited once more.

    python hack/soak.py --rounds 100
    python hack/soak.py --minutes 30 --seed 7 --no-faults

Prints one line per round, any problem found, and as its last line one JSON object: rounds,
objects, kills, faults_injected, duplicates, leaks, lost_volumes, unconverged (and seed, seconds).
Exits 1 when duplicates, leaks, lost volumes or unconverged objects are not all zero.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from barrack_testkit.chaos import Chaos, Faults  # noqa: E402
from barrack_testkit.stack import dev_stack  # noqa: E402

API_KEY = "soak-key-0b5e55ed"
NAMESPACE = "soak"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, help="rounds to run (default 100 unless --minutes)")
    parser.add_argument("--minutes", type=float, help="run rounds until this many minutes have passed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=3, help="changes per round")
    parser.add_argument("--no-kills", action="store_true", help="do not SIGKILL the operator")
    parser.add_argument("--no-faults", action="store_true", help="no simulator faults")
    parser.add_argument("--error-rate", type=float, default=0.1)
    parser.add_argument("--commit-then-fail-rate", type=float, default=0.15)
    parser.add_argument("--latency", type=float, default=0.03, help="seconds added to every reply")
    parser.add_argument("--throttle-share", type=float, default=0.3, help="share of rounds with 429 bursts")
    parser.add_argument(
        "--malformed-share", type=float, default=0.3, help="share of rounds with malformed listings"
    )
    parser.add_argument("--slow-create", type=float, default=0.5, help="seconds added to every create")
    parser.add_argument("--rps", type=float, default=10, help="the operator's requests per second")
    parser.add_argument("--transition-seconds", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    if args.rounds is None and args.minutes is None:
        args.rounds = 100
    return args


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="barrack-soak-"))
    started = time.monotonic()
    settings = {
        "POLL_INTERVAL": "0.5",
        "IDLE_POLL_INTERVAL": "3",
        "BLOCKED_REQUEUE": "2",
        "REQUESTS_PER_SECOND": str(args.rps),
        "LOG_LEVEL": "debug",
    }
    faults = Faults()
    if not args.no_faults:
        faults = Faults(
            error_rate=args.error_rate,
            commit_then_fail_rate=args.commit_then_fail_rate,
            latency_seconds=args.latency,
            throttle_share=args.throttle_share,
            malformed_share=args.malformed_share,
            slow_create_seconds=args.slow_create,
        )
    try:
        with dev_stack(
            work,
            ROOT / "crds",
            API_KEY,
            namespace=NAMESPACE,
            transition_seconds=args.transition_seconds,
            settings=settings,
        ) as stack:
            chaos = Chaos(
                stack.plane,
                NAMESPACE,
                stack.sim,
                stack.operator,
                seed=args.seed,
                kills=not args.no_kills,
                faults=faults,
                changes_per_round=args.changes,
                log=lambda line: print(line, flush=True),
            )
            tally = chaos.run(rounds=args.rounds, minutes=args.minutes)
            secret_seen = API_KEY in stack.operator.log()
    finally:
        if args.keep:
            print(f"work directory: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for problem in tally.problems:
        print(f"PROBLEM: {problem}", flush=True)
    if secret_seen:
        print("PROBLEM: the API key appears in the operator log", flush=True)
    print(json.dumps({**tally.figures(), "seed": args.seed, "seconds": round(time.monotonic() - started, 1)}))
    return 0 if tally.clean and not secret_seen else 1


if __name__ == "__main__":
    sys.exit(main())
