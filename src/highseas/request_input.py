"""Input of the endpoints the platform documents as GET with a JSON body (contract §1).

The same fields are read from the JSON body (GET or POST) and from the query string, and the
body wins. In the query string an array field may be JSON text (``operator=[1,3]``), repeated
keys (``operator=1&operator=3``) or one scalar (``operator=1`` → ``[1]``); an object inside an
array is JSON text (``components=[{"id":…,"value":…}]``).
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def _is_list_field(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_list_field(arg) for arg in get_args(annotation) if arg is not type(None))
    return get_origin(annotation) is list


def _query_value(values: list[str], *, is_list: bool) -> Any:
    if not is_list:
        return values[-1]
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            return json.loads(values[0])
        except json.JSONDecodeError:
            return values[0]  # not a list: the model says so, naming the field
    return [_json_object_or_text(value) for value in values]


def _json_object_or_text(value: str) -> Any:
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}]
        ) from None
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
        merged.update(await _json_body(request))
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
