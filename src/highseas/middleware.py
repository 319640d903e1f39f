"""The outermost layer of every request: request id, body size limit, last-resort 500.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so it sees every response, streams
included, and can answer a request whose handler crashed with nothing internal leaking.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from highseas import metrics
from highseas.api_errors import error_body
from highseas.logs import log_context

logger = logging.getLogger("highseas.request")

REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is echoed only if it is short and harmless in logs and headers.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        with log_context(request_id=request_id):
            await self._handle(scope, receive, send, request_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is None:
                # Chunked (no Content-Length): read up to the limit before the app sees it.
                # A declared length needs no counting: the server enforces it.
                body = await _read_body(receive, self.max_body_bytes)
                if body is None:
                    await self._too_large(send_with_id, request_id)
                    return
                receive = _replay(body, receive)
            elif declared > self.max_body_bytes:
                await self._too_large(send_with_id, request_id)
                return
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unhandled error request_id=%s %s %s", request_id, scope["method"], scope["path"]
            )
            if not response_started:
                message = "服务器内部错误，请携带 request_id 联系管理员"
                await _send_json(send_with_id, 500, error_body(500, message, request_id))
        finally:
            seconds = time.perf_counter() - started
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            }
            logger.info(
                "request_id=%s %s %s %s %.1fms",
                request_id,
                scope["method"],
                scope["path"],
                status,
                seconds * 1000,
                extra=fields,
            )
            metrics.observe_request(scope["method"], scope.get("route"), status, seconds)

    async def _too_large(self, send: Send, request_id: str) -> None:
        message = f"请求体过大：不能超过 {self.max_body_bytes} 字节"
        await _send_json(send, 413, error_body(413, message, request_id))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate: str = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
