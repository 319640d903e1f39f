from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from highseas.clock import WireTime
from highseas.models import ComponentStatus, ComponentType, ValidateRule

_LENIENT = ConfigDict(extra="ignore")


def _unique_rules(rules: list[ValidateRule] | None) -> list[ValidateRule] | None:
    return None if rules is None else list(dict.fromkeys(rules))


class ComponentCreate(BaseModel):
    model_config = _LENIENT

    name: str = Field(min_length=1, max_length=100)
    type: ComponentType
    sort: int = 0
    validate_: list[ValidateRule] = Field(default_factory=list, alias="validate")
    status: int = Field(ComponentStatus.ENABLED, ge=0, le=1, description="1 enabled, 0 disabled")

    _rules = field_validator("validate_")(_unique_rules)


class ComponentUpdate(BaseModel):
    """Partial: only the fields given change. ``type`` is fixed once values exist."""

    model_config = _LENIENT

    name: str | None = Field(None, min_length=1, max_length=100)
    type: ComponentType | None = None
    sort: int | None = None
    validate_: list[ValidateRule] | None = Field(None, alias="validate")
    status: int | None = Field(None, ge=0, le=1)

    _rules = field_validator("validate_")(_unique_rules)


class ComponentDelete(BaseModel):
    model_config = _LENIENT

    deletes: list[str] = Field(min_length=1, max_length=1000)


class ComponentRead(BaseModel):
    id: uuid.UUID
    name: str
    type: ComponentType
    sort: int
    validate_: list[ValidateRule] = Field(serialization_alias="validate")
    status: int
    created_at: WireTime
    updated_at: WireTime


class DeletedComponents(BaseModel):
    deleted: int
