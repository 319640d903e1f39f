"""Request input: JSON bodies, and the endpoints documented as GET with a JSON body.

Every JSON body is parsed by ``parse_json_body`` (``JsonInputRoute`` is the route class of
every router): pydantic's parser, which refuses a lone surrogate (``"\\ud800"``: valid JSON,
but no Unicode text, so no database can store it) and nesting deeper than about 200 levels,
and then any NUL character (PostgreSQL cannot store it in text), naming the field. All are
422s instead of a failed statement, or a failed job, later.

For the endpoints the platform documents as GET with a JSON body (contract §1), the same
fields are read from the JSON body (GET or POST) and from the query string, and the body
wins. In the query string an array field may be JSON text (``operator=[1,3]``), repeated keys
(``operator=1&operator=3``) or one scalar (``operator=1`` → ``[1]``); an object inside an
array is JSON text (``components=[{"id":…,"value":…}]``).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic_core import from_json
from starlette.types import Scope

from highseas.text import first_nul

M = TypeVar("M", bound=BaseModel)


def _no_boolean(value: object) -> object:
    if isinstance(value, bool):  # lax int would take true as 1
        raise ValueError("必须是整数，不能是 true/false")
    return value


# For an integer field of a request model: "1" from a query string is 1, a JSON true is no
# number (contract §1: a known field of the wrong type is a 422).
NotBool = BeforeValidator(_no_boolean)


def _is_list_field(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_list_field(arg) for arg in get_args(annotation) if arg is not type(None))
    return get_origin(annotation) is list


_UTF8_BOM = "\ufeff".encode()
# A NUL can only reach a JSON string as this escape (a raw control character is invalid JSON).
_NUL_ESCAPE = b"\\u0000"


def parse_json_body(raw: bytes) -> Any:
    """A request's JSON body as Python values; RequestValidationError (422) when it is not
    JSON, holds a lone surrogate, nests too deep, or has a NUL anywhere (the field named)."""
    # A UTF-8 byte order mark is no part of the JSON (RFC 8259 lets a parser ignore it).
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        value = _loads(raw)
    except ValueError as exc:
        error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": str(exc)}}]) from None
    if _NUL_ESCAPE in raw:
        _refuse_nul(value, ("body",))
    return value


def _loads(text: str | bytes) -> Any:
    """JSON text as Python values; ValueError when it is not JSON, holds a lone surrogate or
    nests deeper than about 200 levels (``json.loads`` takes the first two and fails with
    RecursionError past 1,000)."""
    return from_json(text)


def _refuse_nul(value: Any, loc: tuple[str | int, ...]) -> None:
    found = first_nul(value)
    if found is not None:
        path, text = found
        error = {"type": "text_nul", "loc": (*loc, *path), "msg": "NUL character", "input": text}
        raise RequestValidationError([error])


class _JsonInputRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


def _read_as_json(scope: Scope) -> None:
    """A body is JSON whatever its ``Content-Type`` says (GET bodies often come without one,
    or with a client's default form or text type): FastAPI is told so, and a body that is no
    JSON is the one 422 ``invalid_json``, asking for JSON."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
    scope["headers"] = [*headers, (b"content-type", b"application/json")]


class JsonInputRoute(APIRoute):
    """The route class of every router: JSON bodies go through ``parse_json_body``, once.

    A JSON body is parsed before FastAPI's handler runs, so a refusal reaches the error
    handlers as the 422 it is (FastAPI turns an exception inside its own parsing into a
    400 without detail); FastAPI then gets the parsed value from ``Request.json()``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            _read_as_json(request.scope)
            request = _JsonInputRequest(request.scope, request.receive)
            if (await request.body()).strip():
                await request.json()
            return await handler(request)

        return route


def _query_value(values: list[str], *, is_list: bool) -> Any:
    if not is_list:
        # A one-value field given twice: the model refuses the pair, naming the field, rather
        # than one of them being used silently.
        return values[0] if len(values) == 1 else values
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            return _loads(values[0])
        except ValueError:
            return values[0]  # not a list: the model says so, naming the field
    return [_json_object_or_text(value) for value in values]


def _json_object_or_text(value: str) -> Any:
    if value.lstrip().startswith("{"):
        try:
            return _loads(value)
        except ValueError:
            pass
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    # Whatever its Content-Type (GET bodies often come without): parsed once, by the route.
    body = await request.json()
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"type": "dict_type", "loc": ("body",), "msg": "not an object", "input": body}]
        )
    return body


def query_or_body(model: type[M]) -> Callable[[Request], Coroutine[Any, Any, M]]:
    """A dependency that builds ``model`` from the query string and the JSON body."""

    async def dependency(request: Request) -> M:
        merged: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            values = request.query_params.getlist(field.alias or name)
            if values:
                merged[field.alias or name] = _query_value(
                    values, is_list=_is_list_field(field.annotation)
                )
        _refuse_nul(merged, ("query",))
        # Body wins, but a null there means "not given" and leaves the query's value.
        merged.update((k, v) for k, v in (await _json_body(request)).items() if v is not None)
        try:
            return model.model_validate(merged)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None

    return dependency


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents the JSON body of a GET (FastAPI only infers it for
    parameters it parses itself)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _inline(schema, definitions)}},
        }
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    # Local "#/$defs/…" references would resolve against the whole OpenAPI document.
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
