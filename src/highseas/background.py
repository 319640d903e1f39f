"""The app's job kinds, composed in one place.

Each domain that has background work exposes ``register(registry)`` in its ``jobs.py`` and is
added here; ``highseas serve`` and ``highseas worker`` both run exactly this set. Explicit
composition instead of import-time decorators: no import order to get right, no cycles.
"""

from __future__ import annotations

from highseas.callbacks import jobs as callbacks_jobs
from highseas.config import Settings
from highseas.customers import jobs as customers_jobs
from highseas.imports import jobs as imports_jobs
from highseas.jobs import Registry


def job_registry(settings: Settings) -> Registry:
    registry = Registry(default_max_attempts=settings.job_max_attempts)
    callbacks_jobs.register(registry, settings)
    customers_jobs.register(registry, settings)
    imports_jobs.register(registry, settings)
    return registry
