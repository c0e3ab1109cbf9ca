"""Startup scripts as the simulator serves them (contract section 8): a name of 1 to 50 characters,
unique in the account; at most 64 KiB of content; at most 100 scripts; an update changes what
later instances run; a script that an instance not yet DELETED was created with cannot be deleted
(409 ``script_in_use``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_sim.errors import Conflict, Invalid, Missing

SCRIPT_NAME = re.compile(r"^.{1,50}$", re.S)
MAX_CONTENT = 64 * 1024
MAX_SCRIPTS = 100
MAX_DESCRIPTION = 255


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scripts:
    def __init__(self, new_id: Callable[[str], str]) -> None:
        self._new_id = new_id
        self.items: dict[str, m.Script] = {}

    def get(self, script_id: str) -> m.Script:
        script = self.items.get(script_id)
        if script is None:
            raise Missing(f"No script {script_id}")
        return script

    def create(self, req: rq.CreateScriptRequest) -> m.Script:
        if not SCRIPT_NAME.match(req.name) or not req.name.strip():
            raise Invalid("name must be 1 to 50 characters")
        if any(s.name == req.name for s in self.items.values()):
            raise Conflict(f"A script named {req.name!r} exists", "name_taken")
        self._check(req.content, req.description)
        if len(self.items) >= MAX_SCRIPTS:
            raise Conflict(f"An account holds at most {MAX_SCRIPTS} scripts", "limit_reached")
        now = _now()
        script = m.Script(id=self._new_id("T"), name=req.name, content=req.content,
                          description=req.description or "", created_at=now, updated_at=now)  # fmt: skip
        self.items[script.id] = script
        return script

    def update(self, script_id: str, req: rq.UpdateScriptRequest) -> m.Script:
        script = self.get(script_id)
        self._check(req.content if req.content is not None else script.content, req.description)
        changes = {
            k: v for k, v in (("content", req.content), ("description", req.description)) if v is not None
        }
        updated = script.model_copy(update={**changes, "updated_at": _now()})
        self.items[script_id] = updated
        return updated

    def delete(self, script_id: str, instances: Iterable[m.VMInstance]) -> None:
        self.get(script_id)
        users = sorted(i.id for i in instances if i.startup_script_id == script_id and i.status != "DELETED")
        if users:
            raise Conflict(f"Script {script_id} is in use by instance(s) {', '.join(users)}", "script_in_use")
        del self.items[script_id]

    @staticmethod
    def _check(content: str, description: str | None) -> None:
        if len(content.encode()) > MAX_CONTENT:
            raise Invalid(f"content is at most {MAX_CONTENT} bytes")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise Invalid(f"description is at most {MAX_DESCRIPTION} characters")
