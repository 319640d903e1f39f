"""The pool's own fields, by name: a pool file's columns of these names fill them (``highseas
pool import``), so no component may take one of these names."""

from __future__ import annotations

POOL_FIELDS = (
    "phone",
    "name",
    "email",
    "company",
    "sex",
    "sort",
    "extra",
    "operator",
    "created_at",
)
