from __future__ import annotations

import dataclasses
import random

import phonenumbers
import pytest
from phonenumbers import carrier, geocoder
from phonenumbers.carrierdata import CARRIER_DATA
from phonenumbers.geodata import GEOCODE_DATA

from highseas.phones import OPERATOR_NAMES, Operator, PhoneInfo, normalise, parse, split_region


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138 0013 8000",
        "+86-138-0013-8000",
        "+8613800138000",
        "0086-138-0013-8000",
        "008613800138000",
        "8613800138000",
        "86 138 0013 8000",
        "138 0013 8000",
        "138-0013-8000",
        "(+86) 138-0013-8000",
        "+86 (138) 0013 8000",
        " 13800138000\t\r\n",
        "138\u00a00013\u00a08000",
        "\ufeff13800138000",
        "１３８００１３８０００",
        "＋８６　１３８－００１３－８０００",
        "（＋86）13800138000",
    ],
)
def test_normalise_accepts_the_usual_ways_of_writing_a_mobile(raw: str) -> None:
    assert normalise(raw) == "13800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "garbage",
        "1380013800a",
        "138.0013.8000",
        "13800138000.0",  # a spreadsheet float: the file reader's job
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "01380013800",  # 11 digits, not starting with 1
        "013800138000",  # trunk 0 before a mobile is not accepted
        "12345678901",  # 1[0-2] is never mobile
        "010-12345678",  # Beijing landline
        "0755-8888-8888",  # Shenzhen landline
        "02112345678",
        "+1 138 0013 8000",
        "+852 9123 4567",
        "+86 10 1234 5678",  # Beijing landline in international form
        "86 1380013800",  # 86 + 10 digits
        "0086 0086 13800138000",
        "+86+8613800138000",
        "861380013800086",
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits: only ASCII and full-width digits are read
        "१३८००१३८०००",  # Devanagari digits
    ],
)
def test_normalise_refuses_what_is_not_a_mainland_mobile(raw: str) -> None:
    assert normalise(raw) is None
    assert parse(raw) is None


def test_operator_names() -> None:
    assert {int(op): name for op, name in OPERATOR_NAMES.items()} == {
        0: "未知",
        1: "电信",
        2: "联通",
        3: "移动",
        4: "广电",
    }


def library_carrier(phone: str) -> str:
    return carrier.name_for_number(phonenumbers.parse(phone, "CN"), "en")


@pytest.mark.parametrize(
    ("phone", "library_name", "operator"),
    [
        ("13800138000", "China Mobile", Operator.MOBILE),
        ("13012345678", "China Unicom", Operator.UNICOM),
        ("13312345678", "China Telecom", Operator.TELECOM),
        ("19212345678", "China Broadnet", Operator.BROADNET),
        ("16101234567", "China Broadnet", Operator.BROADNET),
        # Virtual-operator blocks: the parent carrier when the library names one.
        ("17001234567", "China Telecom", Operator.TELECOM),
        ("17031234567", "China Mobile", Operator.MOBILE),
        ("17041234567", "China Unicom", Operator.UNICOM),
        ("17112345678", "China Unicom", Operator.UNICOM),
        ("16712345678", "China Unicom", Operator.UNICOM),
        # Valid blocks the library names no carrier for.
        ("16212345678", "", Operator.UNKNOWN),
        ("16512345678", "", Operator.UNKNOWN),
        ("13491234567", "", Operator.UNKNOWN),
    ],
)
def test_parse_maps_the_library_carrier_to_an_operator(
    phone: str, library_name: str, operator: Operator
) -> None:
    assert library_carrier(phone) == library_name
    info = parse(phone)
    assert info is not None
    assert info.phone == phone
    assert info.operator is operator
    assert info.operator_name == OPERATOR_NAMES[operator]


def test_every_carrier_the_library_names_for_china_is_mapped() -> None:
    names = {value["en"] for key, value in CARRIER_DATA.items() if key.startswith("86")}
    assert names == {"China Mobile", "China Unicom", "China Telecom", "China Broadnet"}


@pytest.mark.parametrize(
    "phone",
    ["14412345678", "15412345678", "16112345678", "17406123456", "17912345678", "19412345678"],
)
def test_parse_refuses_blocks_that_do_not_exist(phone: str) -> None:
    assert normalise(phone) == phone
    assert parse(phone) is None


def test_parse_returns_a_frozen_phone_info() -> None:
    info = parse("+86 138-0013-8000")
    assert info == PhoneInfo("13800138000", Operator.MOBILE, "移动", "北京市", "北京市")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.phone = "13900139000"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("phone", "library_description", "province", "city"),
    [
        ("13800138000", "北京市", "北京市", "北京市"),
        ("17726012345", "天津", "天津市", "天津市"),
        ("13010540000", "广东省深圳市", "广东省", "深圳市"),
        ("13009150000", "吉林省吉林市", "吉林省", "吉林市"),
        ("13000690000", "广西南宁市", "广西壮族自治区", "南宁市"),
        ("13009500000", "内蒙古呼和浩特市", "内蒙古自治区", "呼和浩特市"),
        ("13030450000", "内蒙古锡林郭勒盟", "内蒙古自治区", "锡林郭勒盟"),
        ("13000960000", "新疆乌鲁木齐市", "新疆维吾尔自治区", "乌鲁木齐市"),
        ("13031300000", "新疆伊犁哈萨克自治州", "新疆维吾尔自治区", "伊犁哈萨克自治州"),
        ("13228900000", "西藏拉萨市", "西藏自治区", "拉萨市"),
        ("13007960000", "宁夏银川市", "宁夏回族自治区", "银川市"),
        ("19212345678", "中国", None, None),
    ],
)
def test_parse_splits_the_region(
    phone: str, library_description: str, province: str | None, city: str | None
) -> None:
    number = phonenumbers.parse(phone, "CN")
    assert geocoder.description_for_number(number, "zh") == library_description
    info = parse(phone)
    assert info is not None
    assert (info.province, info.city) == (province, city)


@pytest.mark.parametrize(
    ("description", "province", "city"),
    [
        ("广东省深圳市", "广东省", "深圳市"),
        ("黑龙江省哈尔滨市", "黑龙江省", "哈尔滨市"),
        ("北京市", "北京市", "北京市"),
        ("重庆", "重庆市", "重庆市"),
        ("广西壮族自治区南宁市", "广西壮族自治区", "南宁市"),
        ("广西南宁市", "广西壮族自治区", "南宁市"),
        ("内蒙古自治区呼和浩特市", "内蒙古自治区", "呼和浩特市"),
        ("新疆维吾尔自治区乌鲁木齐市", "新疆维吾尔自治区", "乌鲁木齐市"),
        ("宁夏回族自治区银川市", "宁夏回族自治区", "银川市"),
        ("西藏自治区拉萨市", "西藏自治区", "拉萨市"),
        ("广东省", "广东省", None),
        ("中国", None, None),
        ("", None, None),
        ("Beijing", None, None),
    ],
)
def test_split_region(description: str, province: str | None, city: str | None) -> None:
    assert split_region(description) == (province, city)


def test_every_description_the_library_has_for_china_mobiles_splits() -> None:
    descriptions = {value["zh"] for key, value in GEOCODE_DATA.items() if key.startswith("861")}
    assert len(descriptions) > 300
    for description in descriptions:
        province, city = split_region(description)
        assert province is not None, description
        assert city is not None, description


def test_the_library_prefix_tables_stop_at_the_seventh_digit() -> None:
    # The cache key is the first 7 national digits: "86" + 7 = 9 characters.
    for table in (CARRIER_DATA, GEOCODE_DATA):
        assert max(len(key) for key in table if key.startswith("861")) <= 9


REFERENCE_CARRIERS = {
    "China Telecom": Operator.TELECOM,
    "China Unicom": Operator.UNICOM,
    "China Mobile": Operator.MOBILE,
    "China Broadnet": Operator.BROADNET,
}


def uncached(phone: str) -> tuple[Operator, str | None, str | None] | None:
    number = phonenumbers.parse("+86" + phone)
    if not phonenumbers.is_valid_number_for_region(number, "CN"):
        return None
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    operator = REFERENCE_CARRIERS.get(carrier.name_for_number(number, "en"), Operator.UNKNOWN)
    province, city = split_region(geocoder.description_for_number(number, "zh"))
    return operator, province, city


def test_the_prefix_cache_agrees_with_the_library_on_every_full_number() -> None:
    rng = random.Random(20240601)
    # Several numbers per block, so most answers come out of the cache filled by another one.
    prefixes = [f"1{rng.randrange(10**6):06d}" for _ in range(500)]
    phones = [f"{prefix}{rng.randrange(10**4):04d}" for prefix in prefixes for _ in range(8)]
    rng.shuffle(phones)
    valid = located = 0
    for phone in phones:
        info = parse(phone)
        got = None if info is None else (info.operator, info.province, info.city)
        assert got == uncached(phone), phone
        valid += info is not None
        located += info is not None and info.city is not None
    # The sample must exercise both answers, and regions as well as carriers.
    assert 1000 < located < valid < len(phones)
