"""
PHP's session encodings (``session.serialize_handler``), decoded.

``php`` (PHP's default)
    ``name|<serialized value>`` for each ``$_SESSION`` key, one after the
    other. A name is everything up to the first ``|`` (PHP refuses to encode
    a key containing ``|`` and skips integer keys). PHP 5's ``!name|``
    marker for an unset key is gone since PHP 7: like PHP 7 and 8, a ``!``
    is just part of the name.
``php_binary``
    ``<length byte><name><serialized value>`` for each key. As in PHP 7
    and 8, the length byte's high bit is ignored (PHP 5 used it to mark an
    unset key) and names over 127 bytes are never written (PHP skips them).
``php_serialize``
    ``serialize($_SESSION)``: one array.

The values of one session share one reference numbering (an ``r:`` in one
key's value may point into an earlier key's), as PHP decodes them. Keys of
the returned dict are always ``str``: the integer keys ``php_serialize`` can
hold become their decimal strings, which is how PHP treats them too
(``$_SESSION[5]`` and ``$_SESSION["5"]`` are one key), so a session reads
the same whichever serializer wrote it. A name that is not UTF-8 (PHP
allows any bytes) is decoded with ``surrogateescape``, so the rest of the
session still reads and ``name.encode("utf-8", "surrogateescape")`` gives
PHP's bytes back. Values follow :mod:`ratchetpy.session.serialize`.

Auto-detection (:func:`detect_serializer`, and :func:`decode_session` with
no serializer) takes ``php_serialize`` when the data starts with ``a:`` and
is, as a whole, one serialized array; otherwise the one of ``php`` and
``php_binary`` that decodes the whole data. When both do (PHP wrote
``php_binary`` with a ``|`` in a key name: reading it as ``php`` takes
everything up to that ``|`` as one name), the one that finds more keys
wins, and on a tie ``php_binary`` when the first byte is a control
character (the length of a name under 32 bytes), else ``php``. This is
right for everything PHP writes except names no application uses: a
``php`` session whose first key name starts with a control character
(``"\x01|i:0;"`` is also the ``php_binary`` session ``{"|": 0}``), or whose
names hold control bytes followed by serialized text, or whose first key
starts with ``a:<digits>:{`` and which is one valid serialized array as a
whole; a ``php_binary`` session whose first name is 32 bytes or longer and
whose only ``|`` ends a name. Give the serializer explicitly
(PHP's ``session.serialize_handler``) to rule these out.
"""

from __future__ import annotations

from typing import Any

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.serialize import Unserializer

__all__ = ["SERIALIZERS", "decode_session", "detect_serializer"]

#: The ``session.serialize_handler`` values this module decodes.
SERIALIZERS = ("php", "php_binary", "php_serialize")

_MAX_SIZE = 16 * 1024 * 1024
_PS_DELIMITER = 0x7C  # "|"
_PS_BIN_MAX = 127


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _decode_php(data: bytes, max_depth: int) -> dict[str, Any]:
    reader = Unserializer(data, max_depth=max_depth, max_size=_MAX_SIZE)
    session: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        bar = data.find(b"|", pos)
        if bar < 0:
            raise SessionDataError(f"php session: no '|' after the key name at byte {pos}")
        name = _name(data[pos:bar])
        session[name], pos = reader.read(bar + 1)
    return session


def _decode_php_binary(data: bytes, max_depth: int) -> dict[str, Any]:
    reader = Unserializer(data, max_depth=max_depth, max_size=_MAX_SIZE)
    session: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        length = data[pos] & _PS_BIN_MAX
        start = pos + 1
        if start + length >= len(data):
            raise SessionDataError(
                f"php_binary session: key length {length} at byte {pos} runs past the end"
            )
        name = _name(data[start : start + length])
        session[name], pos = reader.read(start + length)
    return session


def _decode_php_serialize(data: bytes, max_depth: int) -> dict[str, Any]:
    value, end = Unserializer(data, max_depth=max_depth, max_size=_MAX_SIZE).read(0)
    if end != len(data):
        raise SessionDataError(
            f"php_serialize session: {len(data) - end} unexpected bytes after the array "
            f"at byte {end}"
        )
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise SessionDataError(
            f"php_serialize session: expected an array, got {type(value).__name__}"
        )
    session: dict[str, Any] = {}
    for key, item in value.items():
        session[_name(key) if isinstance(key, bytes) else str(key)] = item
    return session


_DECODERS = {
    "php": _decode_php,
    "php_binary": _decode_php_binary,
    "php_serialize": _decode_php_serialize,
}


def _check_serializer(serializer: str) -> None:
    if serializer not in _DECODERS:
        raise ConfigurationError(
            f"unknown session serializer {serializer!r}: use one of {', '.join(SERIALIZERS)}"
        )


def _detect(data: bytes, max_depth: int) -> tuple[str, dict[str, Any]]:
    if not data:
        return "php", {}
    problems: list[str] = []
    if data.startswith(b"a:"):
        try:
            return "php_serialize", _decode_php_serialize(data, max_depth)
        except SessionDataError as exc:
            problems.append(f"php_serialize: {exc}")
    decoded: list[tuple[str, dict[str, Any]]] = []
    for name in ("php", "php_binary"):
        try:
            decoded.append((name, _DECODERS[name](data, max_depth)))
        except SessionDataError as exc:
            problems.append(f"{name}: {exc}")
    if len(decoded) == 2:
        (_, php), (_, binary) = decoded
        # Both read the whole data: PHP wrote php_binary with a "|" in a
        # key (the php reading takes everything up to it as one name, so it
        # finds fewer keys), or, far less likely, php with control bytes and
        # serialized text in its names. A php_binary session starting with
        # a control byte is the length of a name under 32 bytes.
        if len(binary) > len(php) or (len(binary) == len(php) and data[0] < 0x20):
            return decoded[1]
        return decoded[0]
    if decoded:
        return decoded[0]
    raise SessionDataError(
        "session data is in none of PHP's session formats"
        + _other_format_hint(data)
        + " ("
        + "; ".join(problems)
        + ")"
    )


def _other_format_hint(data: bytes) -> str:
    # The igbinary and msgpack extensions bring serializers of their own.
    if data[:4] in (b"\0\0\0\x01", b"\0\0\0\x02"):
        return (
            "; it looks like igbinary (session.serialize_handler=igbinary), which ratchetpy "
            "does not read: set session.serialize_handler to php_serialize"
        )
    if 0x80 <= data[0] <= 0x8F or data[0] in (0xDE, 0xDF):
        return (
            "; it may be msgpack (session.serialize_handler=msgpack), which ratchetpy does "
            "not read: set session.serialize_handler to php_serialize"
        )
    return ""


def detect_serializer(data: bytes, *, max_depth: int = 64) -> str:
    """
    The ``session.serialize_handler`` that wrote ``data`` (see the module
    docstring for how it decides); ``"php"`` for empty data.

    Raises:
        SessionDataError: no serializer decodes the data; the message says
            why for each.
    """
    return _detect(bytes(data), max_depth)[0]


def decode_session(
    data: bytes, serializer: str | None = None, *, max_depth: int = 64
) -> dict[str, Any]:
    """
    Decode the contents of a PHP session (a ``sess_<id>`` file, a Redis or
    memcached value) into ``{key: value}``.

    Args:
        data: the stored bytes; empty data is an empty session.
        serializer: ``"php"``, ``"php_binary"`` or ``"php_serialize"``
            (PHP's ``session.serialize_handler``), or ``None`` to detect it.
        max_depth: the deepest nesting of arrays/objects accepted.

    Raises:
        ConfigurationError: ``serializer`` is not one of :data:`SERIALIZERS`.
        SessionDataError: the data is malformed, truncated or over the limits.
    """
    if serializer is not None:
        _check_serializer(serializer)
    if len(data) > _MAX_SIZE:
        raise SessionDataError(f"session data is {len(data)} bytes, over the limit of {_MAX_SIZE}")
    data = bytes(data)
    if serializer is None:
        return _detect(data, max_depth)[1]
    if not data:
        return {}
    return _DECODERS[serializer](data, max_depth)
