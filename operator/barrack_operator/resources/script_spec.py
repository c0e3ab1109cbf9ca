"""The BarrackStartupScript spec: its content inline or from a ConfigMap key."""

from __future__ import annotations

from pydantic import Field

from barrack_operator.resources.specs import CommonSpec, Model


class ConfigMapKeyRef(Model):
    name: str = Field(description="A ConfigMap in the object's namespace.", min_length=1)
    key: str = Field(description="The key whose value is the script.", min_length=1)


class ScriptSource(Model):
    configMapKeyRef: ConfigMapKeyRef = Field(description="The script is this ConfigMap key's value.")


class BarrackStartupScriptSpec(CommonSpec):
    content: str | None = Field(
        default=None,
        description="The script (one of content, contentFrom); at most 64 KiB. A change updates it on Barrack and "
        "affects only instances created afterwards (an instance runs its script once, at first boot).",
        max_length=65536,
    )
    contentFrom: ScriptSource | None = Field(
        default=None, description="Where the script is read from (one of content, contentFrom); read again each "
        "drift interval.",
    )  # fmt: skip
    description: str = Field(default="", description="Up to 255 characters.", max_length=255)
