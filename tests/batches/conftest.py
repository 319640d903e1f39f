from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from highseas.config import Settings
from tests.fixtures.receiver import Receiver


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The receiver is on 127.0.0.1; callbacks retry at once."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        callback_allow_private=True,
        callback_retry_schedule=[0, 0, 0],
        callback_timeout=2.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running
