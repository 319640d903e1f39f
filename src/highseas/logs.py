"""Process-wide logging: one line per record, to stderr."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Request lines come from highseas.request (with the request id); uvicorn's would repeat them.
    logging.getLogger("uvicorn.access").disabled = True
    # aiosqlite's DEBUG lines carry every statement's parameters: phone numbers, decrypted
    # ones included (interface encryption, docs/encryption.md). Nothing decrypted is logged.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger().level))
