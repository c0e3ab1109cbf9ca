"""Objects that go without a Barrack call: one that never owned a Barrack resource (see
:mod:`~barrack_operator.resources.ownership`) is released at once, whatever its deletionPolicy,
and a Normal event says why, whether its finalizer pass runs or it held no finalizer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from barrack_operator.engine.objects import object_ref, view
from barrack_operator.engine.references import Registry
from barrack_operator.engine.writer import ObjectWriter
from barrack_operator.resources.kinds import Kind
from barrack_operator.resources.model import Event, Memory, ObjectView, Outcome
from barrack_operator.resources.ownership import RELEASED, released_without_call

log = logging.getLogger(__name__)


class Releases:
    def __init__(
        self, registry: Registry, memory: Memory, writer: ObjectWriter, leading: Callable[[], bool]
    ) -> None:
        self.registry = registry
        self.memory = memory
        self.writer = writer
        self.leading = leading

    def unowned_outcome(self, obj: ObjectView) -> Outcome | None:
        """A deleted object that owns nothing on Barrack goes without any call, whatever its
        deletionPolicy, paused or not; a Normal event says why (see :mod:`ownership`)."""
        why = released_without_call(obj, self.memory, self.registry)
        if why is None:
            return None
        outcome = Outcome(done=True)
        outcome.note(RELEASED, why)
        log.info("Released without a Barrack call: %s", why, extra=object_ref(obj))
        return outcome

    def gone_without_finalizer(self, kind: Kind, body: dict[str, Any]) -> None:
        """An object deleted while it held no finalizer of the operator's (it never asked Barrack
        for anything, or it is observed only): say so in a Normal event, as a finalizer pass would."""
        obj = view(kind, body)
        if obj.observe_only or not kind.barrack_resource or not self.leading():
            return
        why = released_without_call(obj, self.memory, self.registry)
        if why is not None:
            self.writer.post_in_background(obj, Event("Normal", RELEASED, why))
