"""``POST /normalize``: what a developer sends to see what the caller will hear."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class NormalizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: StrictStr = Field(description="Text as an agent would send it.")
    language: StrictStr = Field(
        "en",
        pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$",
        description="Language code (en, de, pt-BR, ...); languages without rules pass through.",
    )
