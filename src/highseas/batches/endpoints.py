from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from highseas.batches import repository, service
from highseas.batches.schemas import BatchQuery, BatchRead
from highseas.batches.service import Download
from highseas.crypto.codec import PLAIN, Codec
from highseas.db import Database
from highseas.dependencies import RegistryDep, SessionDep, SettingsDep
from highseas.envelope import Envelope, PageEnvelope, ok, page
from highseas.request_input import JsonInputRoute, openapi_body, query_or_body
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(prefix="/agent-api/user/{user_id}", tags=["batches"], route_class=JsonInputRoute)
# The key is the credential: no token, no user in the path (contract §3).
downloads = APIRouter(prefix="/agent-api", tags=["batches"], route_class=JsonInputRoute)


@router.get("/identification/{unique_id}", response_model=Envelope[BatchRead])
async def identification(
    unique_id: Annotated[str, Path(description="the unique_id a batch was accepted with")],
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Envelope[BatchRead]:
    """查看回调数据: a batch's callback message, state and delivery."""
    batch = await service.owned(session, user, unique_id)
    return ok(await service.read(session, batch, settings.resolved_secret_key()))


@router.post("/identification/{unique_id}/redeliver", response_model=Envelope[BatchRead])
async def redeliver(
    unique_id: Annotated[str, Path(description="the unique_id of a finished batch")],
    user: OwnedUserDep,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Envelope[BatchRead]:
    """Send the batch's callback message again (same ``webhook-id``); an expired download
    link is replaced by a fresh one."""
    batch = await service.owned(session, user, unique_id)
    await service.redeliver(session, registry, batch, settings)
    return ok(await service.read(session, batch, settings.resolved_secret_key()), "已重新发送")


@router.get(
    "/batches", response_model=PageEnvelope[BatchRead], openapi_extra=openapi_body(BatchQuery)
)
async def list_batches(
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
    filters: Annotated[BatchQuery, Depends(query_or_body(BatchQuery))],
) -> PageEnvelope[BatchRead]:
    """The user's batches, newest first, to reconcile missed callbacks; filters ``type``,
    ``state`` and ``task_id``, in the query string or a JSON body."""
    batches, total, params = await service.list_batches(session, user, filters)
    shown = await service.read_many(session, batches, settings.resolved_secret_key())
    return page(shown, total, params)


# HEAD is the same operation (one operation id in the schema, so it is left out of it).
@downloads.head("/download-number", response_class=StreamingResponse, include_in_schema=False)
@downloads.get(
    "/download-number",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"example": {"numbers": ["13012121212"]}}}}},
)
async def download_numbers(
    key: Annotated[str, Query(description="the key from the callback's data.url")],
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> StreamingResponse:
    """The numbers a batch imported into its task, by pool customer; cipher text for a batch
    requested with encryption. The key is the credential (no token); 404 unknown, 410
    expired. ``HEAD`` answers the same status and headers without reading the numbers (a
    download tool's check of a link)."""
    found: Download = await service.download(session, key, settings)
    if request.method == "HEAD":
        return StreamingResponse(iter(()), media_type="application/json")
    database: Database = request.app.state.db
    return StreamingResponse(
        _numbers_json(database, found.batch_id, found.codec), media_type="application/json"
    )


async def _numbers_json(
    database: Database, batch_id: uuid.UUID, codec: Codec = PLAIN
) -> AsyncIterator[bytes]:
    yield b'{"numbers":['
    separator = b""
    async for phones in repository.numbers_of_batch(database, batch_id):
        shown = [codec.encrypt(phone) for phone in phones] if codec.active else phones
        yield separator + json.dumps(shown)[1:-1].encode()
        separator = b","
    yield b"]}"
