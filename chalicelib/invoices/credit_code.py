"""The unified social credit code (统一社会信用代码) of a Chinese organisation, GB 32100-2015.

18 characters over an alphabet of 31: the digits and the capital letters without I, O, Z, S and V (too easily
read as 1, 0, 2, 5 and U). Position 1 is the registering authority, 2 the kind of organisation, 3-8 the
administrative division, 9-17 the organisation's body code, and 18 a check character: with the characters'
values c_1..c_17 and the weights W_i = 3^(i-1) mod 31, C_18 = 31 - (sum of c_i * W_i mod 31), where a result of
31 is written as 0.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: value for value, char in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28
LENGTH = 18


def check_character(first17: str) -> str:
    """The check character for the first 17 characters (which must be from the alphabet)."""
    if len(first17) != LENGTH - 1 or any(char not in _VALUE for char in first17):
        raise ValueError("the first 17 characters must come from the code's alphabet")
    total = sum(_VALUE[char] * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why ``code`` is not a valid unified social credit code, or None when it is. Lower case is not accepted:
    the standard writes the letters in capitals, and a tax invoice must carry the code exactly."""
    if len(code) != LENGTH:
        return f"must be {LENGTH} characters, not {len(code)}"
    bad = sorted({char for char in code if char not in _VALUE})
    if bad:
        return f"contains characters outside the code's alphabet (digits and A-Y without I, O, S, V, Z): {''.join(bad)}"
    if check_character(code[:17]) != code[17]:
        return "check character does not match (GB 32100-2015)"
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None
