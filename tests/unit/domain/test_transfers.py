"""Remittance codes and credit matching for corporate transfers (chalicelib/domain/transfers.py)."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from chalicelib.domain.transfers import MatchKind, classify, code_in, new_remittance_code, valid_code


def test_a_code_is_found_in_a_postscript_whatever_the_payer_wrote_around_it() -> None:
    code = new_remittance_code()
    assert valid_code(code) and len(code) == 10
    for postscript in (code, f"货款 {code} 谢谢", f"payment for {code.lower()}", f"{code[:5]} {code[5:]}"):
        assert code_in(postscript) == code, postscript
    assert code_in("货款 十二月") is None and code_in(code[:-1] + ("2" if code[-1] != "2" else "3")) is None


ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
bodies = st.lists(st.sampled_from(ALPHABET), min_size=7, max_size=7).map("".join)


def code_of(body: str) -> str:
    from chalicelib.domain.transfers import _check_char

    return f"PH{body}{_check_char(body)}"


@given(body=bodies, data=st.data())
def test_one_wrong_character_anywhere_never_makes_a_valid_code(body: str, data: st.DataObject) -> None:
    code = code_of(body)
    assert valid_code(code)
    at = data.draw(st.integers(2, len(code) - 1))
    wrong = data.draw(st.sampled_from([c for c in ALPHABET if c != code[at]]))
    assert not valid_code(code[:at] + wrong + code[at + 1:])


@given(body=bodies, at=st.integers(0, 5))
def test_two_swapped_neighbours_are_caught_unless_16_apart(body: str, at: int) -> None:
    a, b = body[at], body[at + 1]
    swapped = body[:at] + b + a + body[at + 2:]
    distance = abs(ALPHABET.index(a) - ALPHABET.index(b))
    caught = not valid_code(f"PH{swapped}{code_of(body)[-1]}")
    assert caught or a == b or distance == 16


@given(amount=st.integers(1, 10**9), credits=st.lists(st.integers(1, 10**9), min_size=1, max_size=6))
def test_credits_add_up_to_exact_partial_or_over_and_never_lose_money(amount: int, credits: list[int]) -> None:
    received = 0
    paid_by = None
    for n, credit in enumerate(credits):
        match = classify(amount, received, credit)
        received += credit
        assert match.received_minor == received
        if paid_by is None:
            if received < amount:
                assert match.kind is MatchKind.PARTIAL and match.outstanding_minor == amount - received
            else:
                assert match.kind is (MatchKind.EXACT if received == amount else MatchKind.OVER)
                assert match.excess_minor == received - amount and match.pays_the_order
                paid_by = n
        else:  # already paid: the whole credit is excess
            assert match.kind is MatchKind.OVER and match.excess_minor == credit
    excess_total = max(0, received - amount)
    assert excess_total == sum(classify(amount, sum(credits[:i]), c).excess_minor for i, c in enumerate(credits))


def test_amounts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        classify(100, 0, 0)
