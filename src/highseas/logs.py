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
