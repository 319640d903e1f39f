"""Mainland-China mobile numbers: normalise, validate, carrier and region.

Pure functions (no I/O), fast enough for the ingest hot path. Validity, carrier and region come
from the ``phonenumbers`` library and depend only on a number's first seven digits (its
号段 + HLR block), so that work is done once per 7-digit prefix and cached; every later number
in the same block costs a shape check, one dict lookup and building the result.

The carrier is the one the block was originally allocated to. Number portability (携号转网)
is invisible to any prefix table: a ported number still reports its original carrier, and only
the carrier's own portability database could tell otherwise.

Numbers with no carrier in the library (162 and 165 virtual-operator blocks, the 1349
satellite block) get ``Operator.UNKNOWN``; virtual-operator blocks the library does attribute
(170x, 171, 167) get that parent carrier. Blocks the library has no geography for get
``province = city = None``: at the pinned version all of 16x, 171, 172, 175 and 19x (192 China
Broadnet included), and scattered blocks elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from phonenumbers import PhoneNumber, PhoneNumberType, is_valid_number, number_type

__all__ = [
    "OPERATOR_NAMES",
    "Operator",
    "PhoneInfo",
    "normalise",
    "parse",
    "split_region",
]


class Operator(IntEnum):
    UNKNOWN = 0
    TELECOM = 1
    UNICOM = 2
    MOBILE = 3
    BROADNET = 4


OPERATOR_NAMES: Final[dict[Operator, str]] = {
    Operator.UNKNOWN: "未知",
    Operator.TELECOM: "电信",
    Operator.UNICOM: "联通",
    Operator.MOBILE: "移动",
    Operator.BROADNET: "广电",
}


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    phone: str
    operator: Operator
    operator_name: str
    province: str | None
    city: str | None


# ``carrier.name_for_number(..., "en")`` for +86; anything else (including "") is UNKNOWN.
_CARRIERS: Final[dict[str, Operator]] = {
    "China Telecom": Operator.TELECOM,
    "China Unicom": Operator.UNICOM,
    "China Mobile": Operator.MOBILE,
    "China Broadnet": Operator.BROADNET,
}

_MOBILE_SHAPE: Final = re.compile(r"1[3-9][0-9]{9}")
_SECOND_DIGITS: Final = frozenset("3456789")

# Separators are deleted. Full-width digits, '+', '-', parentheses and the ideographic space
# come from Chinese IMEs in full-width mode, so they are read as their ASCII forms; NBSP and
# the invisible U+200B/U+FEFF arrive from copy-paste and spreadsheets, where nobody can see
# why a number would be refused. Other non-ASCII digits (Arabic-Indic, …) are refused.
_CLEAN: Final = str.maketrans(
    {
        **{chr(0xFF10 + d): str(d) for d in range(10)},
        "\uff0b": "+",
        **dict.fromkeys(" \t\n\r\v\f\u00a0\u3000\u200b\ufeff-\uff0d()\uff08\uff09"),
    }
)


def normalise(raw: str) -> str | None:
    """The 11-digit number, or None when ``raw`` does not have a mainland mobile shape.

    Shape only (``1[3-9]`` and nine more digits): whether the block exists is ``parse``'s job.
    Accepts separators (whitespace, ``-``, parentheses), full-width digits, and a leading
    ``+86``, ``0086`` or ``86``. Dots are not separators: ``13800138000.0`` is a spreadsheet
    float, which the reader of the file must fix, not this function.
    """
    # The common case, already clean, skips translate() and the regex.
    if len(raw) == 11 and raw.isdigit() and raw.isascii() and raw[0] == "1":
        return raw if raw[1] in _SECOND_DIGITS else None
    text = raw.translate(_CLEAN)
    if text.startswith("+86"):
        text = text[3:]
    elif len(text) == 15 and text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    return text if _MOBILE_SHAPE.fullmatch(text) else None


_MUNICIPALITIES: Final = ("北京市", "天津市", "上海市", "重庆市")
_PROVINCES: Final = (
    *("河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省", "浙江省", "安徽省"),
    *("福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "海南省"),
    *("四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省"),
)
_AUTONOMOUS_REGIONS: Final = {
    "内蒙古": "内蒙古自治区",
    "广西": "广西壮族自治区",
    "西藏": "西藏自治区",
    "宁夏": "宁夏回族自治区",
    "新疆": "新疆维吾尔自治区",
}

# Every spelling a description may start with -> the official name. The library writes
# autonomous regions short ("广西南宁市") and once "天津" without 市; longest first so
# "广西壮族自治区" wins over "广西".
_REGION_PREFIXES: Final = sorted(
    [
        *((name, name) for name in (*_MUNICIPALITIES, *_PROVINCES)),
        *((name[:-1], name) for name in (*_MUNICIPALITIES, *_PROVINCES)),
        *((full, full) for full in _AUTONOMOUS_REGIONS.values()),
        *_AUTONOMOUS_REGIONS.items(),
    ],
    key=lambda pair: -len(pair[0]),
)


def split_region(description: str) -> tuple[str | None, str | None]:
    """``(province, city)`` from a geocoder description such as ``广东省深圳市``.

    Provinces come back under their official names (``广西南宁市`` gives ``广西壮族自治区``,
    ``南宁市``); a municipality is its own city (``北京市``, ``北京市``). The bare country
    name (``中国``, the library's answer for blocks it has no geography for), an empty string
    and anything not starting with a province give ``(None, None)``.
    """
    for prefix, province in _REGION_PREFIXES:
        if description.startswith(prefix):
            if province in _MUNICIPALITIES:
                return province, province
            return province, description[len(prefix) :] or None
    return None, None


_Entry = tuple[Operator, str, str | None, str | None]

# Key: the first 7 digits. Bounded by construction: only keys that passed the shape check get
# here, so at most 700,000 of them (about 70 MB), and in practice the few tens of thousands of
# blocks a customer pool touches.
_PREFIX_CACHE: dict[str, _Entry | None] = {}
# One tuple per distinct answer, so a full cache costs a key and a pointer per prefix.
_ENTRIES: dict[_Entry, _Entry] = {}


def _lookup(prefix: str) -> _Entry | None:
    # The library's data never looks past the 7th digit of a +86 mobile number (tests prove
    # it), so any suffix gives the block's answer; a fixed one keeps the cache independent of
    # which number of a block came first.
    number = PhoneNumber(country_code=86, national_number=int(prefix + "0000"))
    if not is_valid_number(number) or number_type(number) not in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    # Imported at the first block looked up: the geography data alone is over half a second
    # that every process (an API that only normalises, a CLI call) would pay at start.
    from phonenumbers import carrier, geocoder  # noqa: PLC0415

    operator = _CARRIERS.get(carrier.name_for_number(number, "en"), Operator.UNKNOWN)
    province, city = split_region(geocoder.description_for_number(number, "zh"))
    entry = (operator, OPERATOR_NAMES[operator], province, city)
    return _ENTRIES.setdefault(entry, entry)


def parse(raw: str) -> PhoneInfo | None:
    """Normalise and validate ``raw``; None unless it is an existing mainland mobile block."""
    phone = normalise(raw)
    if phone is None:
        return None
    prefix = phone[:7]
    try:
        entry = _PREFIX_CACHE[prefix]
    except KeyError:
        entry = _PREFIX_CACHE[prefix] = _lookup(prefix)
    if entry is None:
        return None
    return PhoneInfo(phone, *entry)
