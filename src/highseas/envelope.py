"""Success envelopes and pagination (contract §1): HTTP 200, ``code`` 200, a Chinese message."""

from __future__ import annotations

from math import ceil
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from highseas.request_input import NotBool

T = TypeVar("T")

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 15
# Far past any pool, and small enough that the offset (at most 10^15 rows) fits the 64-bit
# integer both databases bind; a larger page is a 422, not an overflow.
MAX_PAGE = 10**12
# The page fields of the query models (the GET-with-body endpoints); _page_params for the rest.
Page = Annotated[int, NotBool, Field(ge=1, le=MAX_PAGE)]
PerPage = Annotated[int, NotBool, Field(ge=1, le=MAX_PER_PAGE)]


class Envelope(BaseModel, Generic[T]):
    code: Literal[200] = 200
    status: Literal["success"] = "success"
    message: str
    data: T


class PageMeta(BaseModel):
    has_pages: bool
    total: int
    last_page: int
    current_page: int
    per_page: int


class PageEnvelope(Envelope[list[T]], Generic[T]):
    meta: PageMeta


class PageParams(BaseModel):
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page number, from 1")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description="rows per page (at most 1000)")
    ] = DEFAULT_PER_PAGE,
) -> PageParams:
    return PageParams(page=page, per_page=per_page)


PageDep = Annotated[PageParams, Depends(_page_params)]


def ok(data: T, message: str = "成功") -> Envelope[T]:
    return Envelope[T](message=message, data=data)


def page(rows: list[T], total: int, params: PageParams, message: str = "成功") -> PageEnvelope[T]:
    last_page = max(1, ceil(total / params.per_page))
    meta = PageMeta(
        has_pages=last_page > 1,
        total=total,
        last_page=last_page,
        current_page=params.page,
        per_page=params.per_page,
    )
    return PageEnvelope[T](message=message, data=rows, meta=meta)
