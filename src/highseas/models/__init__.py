"""Every table, one module each, on one metadata (what Alembic compares against)."""

from highseas.models.agent import Agent, AgentToken
from highseas.models.base import Base
from highseas.models.batch import Batch, BatchState, BatchType
from highseas.models.call_task import CallTask, NumberStatus, TaskNumber, TaskStatus
from highseas.models.callback import (
    CallbackAttempt,
    CallbackEndpoint,
    CallbackMessage,
    CallbackSecret,
    CallbackType,
    DeliveryState,
)
from highseas.models.component import Component, ComponentStatus, ComponentType, ValidateRule
from highseas.models.customer import Customer, CustomerValue
from highseas.models.encryption import EncryptionSetting
from highseas.models.import_support import DownloadKey, IdempotencyKey
from highseas.models.job import Job, JobState
from highseas.models.user import SubUser, User

__all__ = [
    "Agent",
    "AgentToken",
    "Base",
    "Batch",
    "BatchState",
    "BatchType",
    "CallTask",
    "CallbackAttempt",
    "CallbackEndpoint",
    "CallbackMessage",
    "CallbackSecret",
    "CallbackType",
    "Component",
    "ComponentStatus",
    "ComponentType",
    "Customer",
    "CustomerValue",
    "DeliveryState",
    "DownloadKey",
    "EncryptionSetting",
    "IdempotencyKey",
    "Job",
    "JobState",
    "NumberStatus",
    "SubUser",
    "TaskNumber",
    "TaskStatus",
    "User",
    "ValidateRule",
]
