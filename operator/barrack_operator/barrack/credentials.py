"""Where the Barrack API key comes from: a file (a mounted Secret, re-read when it changes) or an
environment variable. The key is held here and handed to the transport only; it is never part of a
repr, a log line or an error."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

FILE_FIX = "put a valid key in the operator's API key Secret (mounted as a file, re-read: no restart)"


class MissingApiKey(Exception):
    """No API key is configured. ``fix`` says where a person puts one."""

    def __init__(self, message: str, fix: str = FILE_FIX) -> None:
        super().__init__(message)
        self.fix = fix


class KeySource(Protocol):
    """Where a client takes its key from before each call."""

    def get(self) -> str: ...

    async def aget(self) -> str: ...

    def fix(self) -> str:
        """What a person does when the key is missing or refused: where to put a valid one."""
        ...


@dataclass
class ApiKeySource:
    key_file: Path | None = None
    env_var: str = "BARRACK_API_KEY"
    _cached: str | None = field(default=None, repr=False)
    _mtime: float | None = field(default=None, repr=False)

    @classmethod
    def fixed(cls, key: str) -> ApiKeySource:
        source = cls(env_var="")
        source._cached = key
        return source

    def get(self) -> str:
        if self.key_file is not None:
            return self._from_file(self.key_file)
        if self._cached is not None:
            return self._cached
        value = os.environ.get(self.env_var, "").strip() if self.env_var else ""
        if not value:
            raise MissingApiKey(f"no Barrack API key: set {self.env_var} or a key file", self.fix())
        return value

    async def aget(self) -> str:
        return self.get()

    def fix(self) -> str:
        if self.key_file is None:
            return f"set {self.env_var} to a valid key" if self.env_var else "configure a valid key"
        return f"put a valid key in the operator's API key Secret (mounted as {self.key_file}, re-read: no restart)"

    def _from_file(self, path: Path) -> str:
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise MissingApiKey(
                f"cannot read the Barrack API key file {path}: {exc.strerror}", self.fix()
            ) from None
        if self._cached is None or mtime != self._mtime:
            self._cached = path.read_text().strip()
            self._mtime = mtime
        if not self._cached:
            raise MissingApiKey(f"the Barrack API key file {path} is empty", self.fix())
        return self._cached

    def __repr__(self) -> str:
        return f"ApiKeySource(key_file={self.key_file!r}, env_var={self.env_var!r})"
