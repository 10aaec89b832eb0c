"""
JSON as PHP Ratchet writes it for WAMP, and strict parsing of what clients send.

Encoding is compact (no spaces), escapes ``/`` as ``\\/`` and non-ASCII as
``\\uXXXX`` like PHP's ``json_encode``, so messages made of strings, ints,
lists and non-empty objects are byte-identical to Ratchet's. Two PHP
artefacts are deliberately not copied: an empty object stays ``{}`` (PHP
writes ``[]``) and ``1.0`` stays ``1.0`` (PHP writes ``1``); JavaScript reads
both the same way except ``{}`` versus ``[]``, where ``{}`` is what the client
sent. NaN and infinities are refused both ways, as in PHP: on input that
covers the ``NaN``/``Infinity`` literals Python's ``json`` accepts and numbers
too large for a float (``1e999``), which would otherwise decode to infinity
and then make every reply carrying them unencodable.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..exceptions import JsonError

__all__ = ["encode", "decode"]


def _default(value: Any) -> Any:
    # A Topic inside a message encodes as its URI, as PHP's string cast does.
    from .topic import Topic

    if isinstance(value, Topic):
        return value.id
    raise TypeError(
        f"a WAMP message can only carry JSON values (dict, list, str, int, float, "
        f"bool, None), not {type(value).__name__}"
    )


_encoder = json.JSONEncoder(
    ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=_default
)


def encode(value: Any) -> str:
    """``value`` as compact JSON text with PHP's escaping of ``/``."""
    # "/" can only occur inside JSON strings, so escaping it textually is safe.
    return _encoder.encode(value).replace("/", "\\/")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"Number out of range: {text[:40]} is not a finite number")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def decode(message: str | bytes) -> Any:
    """
    Parse one WAMP message (a text frame's ``str`` or a binary frame's
    ``bytes``, which must be UTF-8).

    Raises:
        JsonError: not valid JSON, with what is wrong; this includes NaN,
            infinities and numbers out of a float's range.
    """
    try:
        if not isinstance(message, str):
            message = bytes(message).decode("utf-8")
        return _decoder.decode(message)
    except JsonError:
        raise
    except UnicodeDecodeError as exc:
        raise JsonError(f"Malformed UTF-8 characters: {exc}") from None
    except ValueError as exc:
        raise JsonError(f"Syntax error, malformed JSON: {exc}") from None
    except RecursionError:
        raise JsonError("Maximum stack depth exceeded") from None
