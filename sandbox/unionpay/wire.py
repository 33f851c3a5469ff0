"""ACP's two text forms, the sandbox's own reading of them: URL-encoded forms in, raw ``k=v&`` answers out."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode


class FormError(ValueError):
    """The body is not a well-formed UTF-8 form (or repeats a field)."""


def decode_form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("body is not a UTF-8 URL-encoded form") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise FormError(f"field {key} appears twice")
        fields[key] = value
    return fields


def encode_form(fields: Mapping[str, str]) -> bytes:
    return urlencode(list(fields.items())).encode("ascii")


def encode_answer(fields: Mapping[str, str]) -> bytes:
    """Synchronous answers are raw ``k=v&...``. ACP values that hold ``&`` come braced (``{k=v&k=v}``), and
    the braces are part of the signed value; an unbraced ``&`` would split the value, so it is refused here."""
    for key, value in fields.items():
        if "&" in value and not (value.startswith("{") and value.endswith("}")):
            raise ValueError(f"answer field {key} holds an unbraced '&'")
    return "&".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8")


def to_order_id(hub_id: str) -> str:
    """The hub's documented id mapping (``_`` -> ``Z0``, ``Z`` -> ``ZZ``), so the control API and statement
    faults can take a hub attempt id as ``out_trade_no``; the gateway itself only ever sees orderIds."""
    return hub_id.replace("Z", "ZZ").replace("_", "Z0")


def to_hub_id(order_id: str) -> str:
    """The reverse, for labelling deliveries with the hub's id; an orderId that is not escaped stays as it is."""
    out, index = [], 0
    while index < len(order_id):
        pair = order_id[index : index + 2]
        if pair in ("ZZ", "Z0"):
            out.append("Z" if pair == "ZZ" else "_")
            index += 2
        else:
            out.append(order_id[index])
            index += 1
    return "".join(out)


def order_id_of(out_trade_no: str) -> str:
    """Control-API convenience: a hub id (it has an underscore) is mapped, an orderId is taken as it is."""
    return to_order_id(out_trade_no) if "_" in out_trade_no else out_trade_no
