"""Every error the app can produce, rendered in the one envelope of contract §1.

``{"code", "status": "error", "error": <stable reason>, "message": <中文>, "data": [],
"request_id"}`` (+ ``errors`` per field for validation), HTTP status == ``code``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from highseas.errors import HighseasError

logger = logging.getLogger(__name__)

# Input locations FastAPI prefixes to a field's path; the client knows a field by its name.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_UNION_MEMBER = re.compile(r"^(str|int|float|bool)$|\[")
_ENGLISH_LIST = re.compile(r",\s*|\s+or\s+")
# Where the JSON parser stopped, from its English message ("… at line 1 column 17").
_JSON_POSITION = re.compile(r"line (\d+) column (\d+)")

_REASONS_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}

_MESSAGES_BY_STATUS = {
    400: "请求无效",
    401: "未认证",
    403: "无权访问",
    404: "资源不存在",
    405: "不支持的请求方法",
    409: "请求冲突",
    410: "资源已过期",
    413: "请求体过大",
    415: "不支持的内容类型",
    422: "参数校验失败",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}

# pydantic error type → Chinese text; {name} placeholders come from the error's ctx.
_PYDANTIC_MESSAGES = {
    "missing": "为必填项",
    "string_type": "必须是字符串",
    "string_unicode": "不是有效的 Unicode 文本",
    "text_nul": "不能包含 NUL 字符（\\u0000）",
    "string_too_short": "长度不能少于 {min_length}",
    "string_too_long": "长度不能超过 {max_length}",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数",
    "float_type": "必须是数字",
    "float_parsing": "必须是数字",
    "bool_type": "必须是布尔值",
    "bool_parsing": "必须是布尔值",
    "list_type": "必须是数组",
    "dict_type": "必须是对象",
    "model_type": "必须是对象",
    "model_attributes_type": "必须是对象",
    "uuid_type": "必须是 UUID 字符串",
    "uuid_parsing": "必须是 UUID 字符串",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "enum": "取值必须是 {expected} 之一",
    "literal_error": "取值必须是 {expected} 之一",
    "datetime_type": "必须是时间字符串",
    "datetime_parsing": "时间格式不正确",
    "date_parsing": "日期格式不正确",
    "json_invalid": "不是合法的 JSON",
    "json_type": "不是合法的 JSON",
}


def error_body(
    status: int,
    message: str,
    request_id: str,
    *,
    reason: str | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": status,
        "status": "error",
        "error": reason
        or _REASONS_BY_STATUS.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_")),
        "message": message,
        "data": [],
        "request_id": request_id,
    }
    if errors:
        body["errors"] = {field: list(msgs) for field, msgs in errors.items()}
    return body


def _request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def _respond(
    request: Request,
    status: int,
    message: str,
    *,
    reason: str | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = error_body(status, message, _request_id_of(request), reason=reason, errors=errors)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def field_path(loc: Sequence[str | int]) -> str:
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    # pydantic names the member of a union that failed (``value.str``, ``value.list[…]``):
    # the client knows the field only.
    parts = [p for p in parts if not (isinstance(p, str) and _UNION_MEMBER.search(p))]
    return ".".join(str(p) for p in parts) or "body"


def _describe(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])
    template = _PYDANTIC_MESSAGES.get(error["type"])
    if template is None:
        return str(error.get("msg", "无效"))
    if "expected" in ctx:  # "'a', 'b' or 'c'": pydantic's English list
        ctx = {**ctx, "expected": _ENGLISH_LIST.sub("、", str(ctx["expected"]))}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


def _shown(value: Any) -> str:
    """The value as the client wrote it: JSON (``null``, ``true``, ``"a"``), not Python."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# Whatever its Content-Type, a body is read as JSON (request_input.JsonInputRoute).
_SEND_JSON = "；请以 JSON 发送（Content-Type: application/json）"


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        described = errors.setdefault(field_path(error["loc"]), [])
        if (text := _describe(error)) not in described:
            described.append(text)
    first = exc.errors()[0]
    field = field_path(first["loc"])
    if first["type"] in ("json_invalid", "json_type"):
        where = _JSON_POSITION.search(str((first.get("ctx") or {}).get("error", "")))
        return _respond(
            request,
            422,
            f"请求体不是合法的 JSON（第 {where[1]} 行第 {where[2]} 列附近）{_SEND_JSON}"
            if where
            else f"请求体不是合法的 JSON{_SEND_JSON}",
            reason="invalid_json",
            errors={"body": ["不是合法的 JSON"]},
        )
    if first["type"] == "missing":
        message = "缺少请求体" if field == "body" else f"缺少必填参数 {field}"
    else:
        # All that is wrong with the first field: a union's members each say what they take.
        wrong = "；".join(errors[field])
        message = f"参数 {field} 无效：{wrong}（收到 {_shown(first.get('input'))}）"
    if len(errors) > 1:
        message += f"；另有 {len(errors) - 1} 个字段有误，见 errors"
    return _respond(request, 422, message, errors=errors)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _validation_response(request, exc)


async def _on_domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HighseasError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return _respond(
        request, exc.status_code, exc.message, reason=exc.reason, errors=exc.errors, headers=headers
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 405:
        allowed = _methods_of(request)
        message = f"接口 {request.url.path} 不支持 {request.method} 请求（可用：{allowed}）"
        return _respond(request, status, message, headers={"Allow": allowed})
    if status == 404:
        message = f"接口不存在：{request.method} {request.url.path}"
    else:
        message = _MESSAGES_BY_STATUS.get(status, HTTPStatus(status).phrase)
    return _respond(request, status, message, headers=exc.headers)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _methods_of(request: Request) -> str:
    """Every method the path answers, as the router matches them. Starlette's ``Allow`` names
    the first route that matched the path only, and an operation served by GET and POST is
    two routes."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database restarting, unreachable, or (SQLite) locked past the busy timeout: a
    # condition to retry, not a bug, so a 503 and one log line instead of a 500 and a trace.
    # Nothing of the request was committed: its transaction is the one that failed.
    # The driver's own reason (too many connections, a restart, a lock), on one line and
    # without SQLAlchemy's rendering of the statement.
    cause = getattr(exc, "orig", None) or exc
    reason = " ".join(str(cause).split())[:300]
    logger.warning(
        "database unavailable request_id=%s: %s: %s",
        _request_id_of(request),
        type(cause).__name__,
        reason,
    )
    message = "数据库暂不可用，请稍后重试（本次请求未生效）"
    return _respond(
        request, 503, message, reason="database_unavailable", headers={"Retry-After": "1"}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HighseasError, _on_domain)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, _on_database_unavailable)
