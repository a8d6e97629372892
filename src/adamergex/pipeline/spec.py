"""The base of every section of the experiment config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are refused, and no number is NaN or infinite (YAML's .nan would pass otherwise)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
