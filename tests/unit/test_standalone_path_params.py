"""Path parameters with a control character or a lone surrogate are answered as not found before any lookup
(functions/standalone.py). The check is a plain loop instead of a character class compiled at every API function's
cold start: it must refuse exactly what the class refused."""

from __future__ import annotations

import re

from functions.standalone import _control

_CLASS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # the character class the loop replaced


def test_the_loop_refuses_exactly_the_characters_the_class_refused():
    differ = [hex(point) for point in range(0x110000) if _control(chr(point)) != bool(_CLASS.search(chr(point)))]
    assert differ == []


def test_a_refused_character_anywhere_in_the_value_is_found():
    assert not _control("pay_0123456789abcdef")
    for bad in ("\x00", "\x1f", "\x7f", "\x9f", "\ud800", "\udfff"):
        assert _control(f"pay_{bad}1") and _control(bad + "x") and _control("x" + bad)
    assert not _control("支付_\xa0\U0001f600")
