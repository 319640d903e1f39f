from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from highseas.clock import WireTime
from highseas.models import ComponentStatus, ComponentType, ValidateRule

_LENIENT = ConfigDict(extra="ignore")
# Trimmed: a file's header cell names a component, and " 城市 " must not be a second 城市.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# The column is a 32-bit integer on PostgreSQL.
SortOrder = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


def _unique_rules(rules: list[ValidateRule] | None) -> list[ValidateRule] | None:
    return None if rules is None else list(dict.fromkeys(rules))


class ComponentCreate(BaseModel):
    model_config = _LENIENT

    name: Name
    type: ComponentType
    sort: SortOrder = 0
    validate_: list[ValidateRule] = Field(default_factory=list, alias="validate")
    status: int = Field(ComponentStatus.ENABLED, ge=0, le=1, description="1 enabled, 0 disabled")

    _rules = field_validator("validate_")(_unique_rules)


class ComponentUpdate(BaseModel):
    """Partial: only the fields given change. ``type`` is fixed once values exist."""

    model_config = _LENIENT

    name: Name | None = None
    type: ComponentType | None = None
    sort: SortOrder | None = None
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
