"""Every table, one module each, on one metadata (what Alembic compares against)."""

from highseas.models.agent import Agent, AgentToken
from highseas.models.base import Base
from highseas.models.job import Job, JobState
from highseas.models.user import SubUser, User

__all__ = ["Agent", "AgentToken", "Base", "Job", "JobState", "SubUser", "User"]
