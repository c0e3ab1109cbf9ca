"""Kubernetes' label selector, as the schedules' instanceSelector takes it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from barrack_operator.resources.model_base import Model


class LabelSelectorRequirement(Model):
    key: str = Field(description="Label key.", min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn; none for Exists and DoesNotExist.",
        max_length=100,
    )


class LabelSelector(Model):
    matchLabels: dict[str, str] = Field(
        default_factory=dict, description="Labels an instance must carry, each with this value."
    )
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        description="Requirements an instance's labels must meet (all of them).",
        max_length=20,
    )
