"""The base of every spec and status model: fields by name or alias, unknown fields ignored,
enums as their values."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", use_enum_values=True)
