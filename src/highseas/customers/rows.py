"""Checking one incoming pool row (async_customer, ``pool import``). Pure: no I/O.

A row is either a ``Draft`` ready to store or the list of what is wrong with it; the caller
decides about duplicates, which need the rest of the batch and the pool.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from highseas import phones
from highseas.clock import from_wire
from highseas.components import values
from highseas.models import ComponentStatus, ValidateRule
from highseas.text import first_nul

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TEXT_LIMITS = {"name": 100, "email": 254, "company": 200}
_SEXES = range(3)  # 0 unknown, 1 male, 2 female
_SORTS = range(-(2**31), 2**31)  # a 32-bit integer column on PostgreSQL

Reject = Callable[[str, Any, str], None]
# What a row's value can be as sent (JSON): reported back as it was.
_JSON_VALUES = (str, int, float, bool, list, dict, type(None))


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    row_id: int
    public_id: str
    name: str
    type: str
    rules: frozenset[str]
    status: int

    @property
    def required(self) -> bool:
        return self.status == ComponentStatus.ENABLED and ValidateRule.REQUIRED in self.rules

    @property
    def only_when_given(self) -> bool:
        """``sometimes``, as in the platform's rule language (Laravel's): the rules apply only
        to a row that carries the component, so ``sometimes|required`` lets a row leave it
        out but not give it empty."""
        return ValidateRule.SOMETIMES in self.rules


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    value: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, _JSON_VALUES) else str(self.value)
        return {"row": self.row, "field": self.field, "value": value, "reason": self.reason}


@dataclass(slots=True)
class Draft:
    info: phones.PhoneInfo
    name: str | None = None
    email: str | None = None
    company: str | None = None
    sex: int | None = None
    sort: int | None = None
    extra: Any = None
    sub_user_id: str | None = None
    created_at: datetime | None = None
    shown: dict[str, Any] = field(default_factory=dict)
    keys: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RowInput:
    """A row in one shape for both sources: plain fields, and component values by public id."""

    index: int
    fields: Mapping[str, Any]
    components: Mapping[str, Any]


def _field_text(row: RowInput, name: str, reject: Reject) -> str | None:
    """A text field's trimmed text, None when empty; a list, an object or a boolean is
    ``invalid_type`` (not its Python repr stored as the text)."""
    raw = row.fields.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        reject(name, raw, "invalid_type")
        return None
    return str(raw).strip() or None


def _small_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or (isinstance(value, str) and "_" in value):  # int("1_0")
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(value)


class RowChecker:
    """Checks rows against one user's components and sub-accounts."""

    def __init__(
        self,
        components: Collection[ComponentSpec],
        sub_user_ids: Collection[str],
        *,
        label: Callable[[ComponentSpec], str],
        allow_created_at: bool = False,
    ) -> None:
        self.components = {c.public_id: c for c in components}
        self.required = [c for c in components if c.required]
        self.sub_user_ids = frozenset(sub_user_ids)
        self.label = label
        self.allow_created_at = allow_created_at

    def check(self, row: RowInput) -> Draft | list[RowError]:
        errors: list[RowError] = []

        def reject(field_name: str, value: Any, reason: str) -> None:
            errors.append(RowError(row.index, field_name, value, reason))

        raw_phone = row.fields.get("phone")
        info = phones.parse(str(raw_phone)) if isinstance(raw_phone, str | int) else None
        if info is None:
            if raw_phone in (None, ""):
                reason = "required"
            elif isinstance(raw_phone, bool | list | dict):
                reason = "invalid_type"
            else:
                reason = "invalid_phone"
            reject("phone", raw_phone, reason)
            info = phones.PhoneInfo("", phones.Operator.UNKNOWN, "", None, None)
        draft = Draft(info=_stated_operator(info, row.fields.get("operator"), reject))
        _check_fields(row, draft, reject)
        sub_user_id = _field_text(row, "sub_user_id", reject)
        if sub_user_id is not None and sub_user_id not in self.sub_user_ids:
            reject("sub_user_id", sub_user_id, "sub_user_forbidden")
        draft.sub_user_id = sub_user_id
        created_at = _field_text(row, "created_at", reject) if self.allow_created_at else None
        if created_at is not None:
            try:
                draft.created_at = from_wire(created_at)
            except ValueError:
                reject("created_at", created_at, "invalid_time")
        self._check_components(row, draft, reject)
        return errors or draft

    def _check_components(self, row: RowInput, draft: Draft, reject: Reject) -> None:
        for public_id, raw in row.components.items():
            spec = self.components.get(public_id)
            if spec is None:
                reject(f"components.{public_id}", raw, "unknown_component")
                continue
            if values.is_empty(raw):
                continue
            try:
                value = values.parse(spec.type, raw, spec.rules)
            except values.InvalidValue as exc:
                reject(self.label(spec), raw, exc.reason)
                continue
            draft.shown[public_id] = value.shown
            draft.keys.append((spec.row_id, value.key))
        for spec in self.required:
            if spec.only_when_given and spec.public_id not in row.components:
                continue
            given = row.components.get(spec.public_id)
            if values.is_empty(given):
                reject(self.label(spec), given, "required")


def _stated_operator(info: phones.PhoneInfo, stated: Any, reject: Reject) -> phones.PhoneInfo:
    """The derived carrier is the block's original allocation; a row may state the carrier
    a ported number (携号转网) is with now."""
    if values.is_empty(stated):
        return info
    try:
        operator = phones.Operator(int(_small_int(stated) or 0))
    except (TypeError, ValueError):
        reject("operator", stated, "invalid_operator")
        return info
    return dataclasses.replace(
        info, operator=operator, operator_name=phones.OPERATOR_NAMES[operator]
    )


def _check_fields(row: RowInput, draft: Draft, reject: Reject) -> None:
    for name, limit in _TEXT_LIMITS.items():
        text = _field_text(row, name, reject)
        if text is None:
            continue
        if len(text) > limit:
            reject(name, text, "too_long")
        elif "\x00" in text:  # PostgreSQL cannot store it (a decrypted company may hold one)
            reject(name, text, "invalid_text")
        elif name == "email" and not _EMAIL.fullmatch(text):
            reject(name, text, "invalid_email")
        else:
            setattr(draft, name, text)
    for name, allowed, reason in (("sex", _SEXES, "invalid_sex"), ("sort", _SORTS, "out_of_range")):
        raw = row.fields.get(name)
        try:
            number = _small_int(raw)
        except (TypeError, ValueError):
            reject(name, raw, "invalid_sex" if name == "sex" else "not_integer")
            continue
        if number is not None and number not in allowed:
            reject(name, raw, reason)
        setattr(draft, name, number)
    extra = row.fields.get("extra")
    if first_nul(extra) is not None:  # a file's extra cell may hold one; a request cannot
        reject("extra", extra, "invalid_text")
    draft.extra = extra
