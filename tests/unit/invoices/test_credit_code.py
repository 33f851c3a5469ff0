"""GB 32100-2015 check character: codes published on real business licences pass, every mutation fails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.invoices.credit_code import ALPHABET, check_character, is_valid, problem

PUBLISHED = [
    "91350100M000100Y43",  # the example in GB 32100-2015 itself
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "914403001922038216",  # 华为技术有限公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code):
    assert problem(code) is None


@pytest.mark.parametrize("code", PUBLISHED)
def test_every_single_character_change_is_caught(code):
    for position in range(18):
        for char in ALPHABET:
            if char != code[position]:
                mutated = code[:position] + char + code[position + 1:]
                assert not is_valid(mutated), mutated


@pytest.mark.parametrize("code", PUBLISHED)
def test_adjacent_transpositions_are_caught(code):
    for position in range(17):
        if code[position] != code[position + 1]:
            swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
            assert not is_valid(swapped), swapped


@pytest.mark.parametrize("code,reason", [
    ("91350100M000100Y4", "must be 18"), ("91350100M000100Y433", "must be 18"),
    ("91350100M000100I43", "outside"), ("91350100m000100y43", "outside"), ("91350100M000100Y44", "check character"),
])
def test_problems_are_named(code, reason):
    assert reason in (problem(code) or "")


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_a_computed_check_character_always_validates(body):
    assert is_valid(body + check_character(body))
