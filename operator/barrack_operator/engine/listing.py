"""How a listing Barrack cannot give shows on an object: before the kind's first listing the
object waits with the listing's error; after ``stale_after_failed_polls`` failures in a row it
says its status may be out of date."""

from __future__ import annotations

from barrack_operator.conditions import SYNCED, Condition
from barrack_operator.inventory import Inventory
from barrack_operator.listings import LISTING_OF
from barrack_operator.resources.common import failed, failure_reason
from barrack_operator.resources.model import ObjectView, Outcome, Timing
from barrack_operator.settings import Settings


def listing_trouble(
    inventory: Inventory, obj: ObjectView, settings: Settings, timing: Timing
) -> Outcome | None:
    """An outcome for an object whose kind Barrack cannot list now; None while it can (or has
    failed only a few times since the last listing)."""
    listing = LISTING_OF[obj.kind]
    error = inventory.listing_error(listing)
    if error is None:
        return None
    if not getattr(inventory, listing).ok:
        return failed(Outcome(), error, timing)
    failures = inventory.failing_for(listing)
    if failures < settings.stale_after_failed_polls:
        return None
    reason, message = failure_reason(error)
    out = Outcome(requeue_after=inventory.retry_gap(listing))
    out.conditions.append(
        Condition(
            SYNCED,
            False,
            reason,
            f"Barrack's {listing.replace('_', ' ')} listing failed {failures} times in a row, so this "
            f"status may be out of date: {message}",
        )
    )
    out.warn(reason, out.conditions[0].message.split(":")[0])
    return out
