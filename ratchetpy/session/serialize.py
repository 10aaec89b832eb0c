"""
A decoder for PHP's ``serialize()`` format, as PHP 7 and 8 write it.

It only builds plain Python values: it never imports, calls or evaluates
anything named in the data (a class name is just a string here).

Values are built as :mod:`ratchetpy.session.php_values` describes (its
table maps each PHP type to its Python value).

References: PHP numbers every value it decodes from 1 (the outermost value
is 1, then each array element and object property value in order, never a
key; an ``R:`` takes no number, an ``r:`` does). ``r:``/``R:`` name that
number; here both give the very object decoded there, so an object seen
twice is one :class:`~ratchetpy.session.php_values.PhpObject` and a
self-referencing object contains itself. An array that refers to itself while it is being decoded (only
PHP references can make that) stays a ``dict`` even when its keys would
make a list, so the cycle holds the final object. The ``data`` of a
``C:`` object is not decoded, but when it is serialized values (what
``Serializable::serialize()`` usually returns) their numbers are counted,
as PHP shares its numbering with that nested call; otherwise later
references would point at the wrong values.

Refused with :class:`~ratchetpy.exceptions.SessionDataError` (the message
says what is wrong and at which byte offset): truncated or malformed data,
trailing bytes after the value (:func:`unserialize` only), nesting deeper
than ``max_depth`` arrays/objects, input longer than ``max_size`` bytes, and
lengths or counts larger than the bytes that remain (checked before
anything is allocated). Strings are slices of the input and references
share objects, so the decoded value is never much larger than the input.

This decoder reads data as PHP's ``unserialize()`` does in a script that
declares none of the data's classes, with two differences: PHP ignores
trailing bytes (PHP 8.3 warns) and clamps integers beyond 64 bits. A
malformed mangled property name (``"\\0ab"``) is kept as it is, public, as
PHP keeps it then. Mutation fuzzing of real payloads against php-cli 8.2
found no other difference in what is accepted.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.php_values import (
    PhpCustomObject,
    PhpEnum,
    PhpObject,
    set_property,
    text_or_bytes,
)

__all__ = [
    "MAX_DEPTH_LIMIT",
    "PhpCustomObject",
    "PhpEnum",
    "PhpObject",
    "Unserializer",
    "unserialize",
    "unserialize_prefix",
]

#: The largest ``max_depth`` accepted: the decoder recurses once per level.
MAX_DEPTH_LIMIT = 256

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# PHP's grammar (ext/standard/var_unserializer.re): iv = [+-]?[0-9]+,
# uiv = [0-9]+, nv = [+-]?([0-9]*.[0-9]+|[0-9]+.[0-9]*), nvexp = (iv|nv)[eE]iv.
_INT = re.compile(rb"[+-]?[0-9]+")
_UINT = re.compile(rb"[0-9]+")
_FLOAT = re.compile(
    rb"(?:[+-]?(?:[0-9]*\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+)(?:[eE][+-]?[0-9]+)?|NAN|-?INF)"
)
# PHP's unserialize() takes these bytes in a class name, not a leading "\\".
_CLASS_NAME = re.compile(rb"[A-Za-z0-9_\x80-\xff][A-Za-z0-9_\x80-\xff\\]*")
_IDENTIFIER = re.compile(rb"[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*")
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")
_HEX = b"0123456789abcdefABCDEF"
# One match for the common values and keys; anything it does not take (and
# every error) goes the step-by-step way, which says what is wrong where.
_FAST_VALUE = re.compile(rb'i:([+-]?[0-9]{1,19});|s:([0-9]{1,10}):"|b:([01]);|N;')
_FAST_KEY = re.compile(rb'i:([+-]?[0-9]{1,19});|s:([0-9]{1,10}):"')
# Every digit count PHP could write for a length or a count; more is hostile.
_MAX_DIGITS = 20
# The fewest bytes one array element can take: an ``i:0;`` key and ``N;``.
_MIN_ELEMENT = 6


_OBJECTS = (PhpObject, PhpCustomObject, PhpEnum)


def _array_key(key: Any) -> Any:
    # PHP stores a decimal string key as an integer (its "symtable" rule):
    # ["5" => x] is [5 => x]. "-0", "05" and out-of-range numbers stay strings.
    if isinstance(key, str) and len(key) <= 20 and _CANONICAL_INT.fullmatch(key):
        number = int(key)
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return key


class _Array:
    """An array being decoded: a dict, unless referenced before it ends."""

    __slots__ = ("items", "referenced")

    def __init__(self) -> None:
        self.items: dict[Any, Any] = {}
        self.referenced = False


class Unserializer:
    """
    Decodes PHP-serialized values from one buffer, sharing reference numbers.

    PHP's session encodings (``php``, ``php_binary``) write one serialized
    value per session key but number their values as one sequence, so an
    ``r:`` in a later value can point into an earlier one: read them all
    with one ``Unserializer``.

    Args:
        data: the whole buffer.
        max_depth: the deepest nesting of arrays/objects accepted (1 to
            :data:`MAX_DEPTH_LIMIT`).
        max_size: the longest buffer accepted, in bytes.

    Raises:
        ConfigurationError: ``max_depth`` or ``max_size`` out of range.
        SessionDataError: ``data`` is longer than ``max_size``.
    """

    def __init__(
        self, data: bytes, *, max_depth: int = 64, max_size: int = 16 * 1024 * 1024
    ) -> None:
        if not 1 <= max_depth <= MAX_DEPTH_LIMIT:
            raise ConfigurationError(f"max_depth must be 1 to {MAX_DEPTH_LIMIT}, got {max_depth!r}")
        if max_size < 0:
            raise ConfigurationError(f"max_size must be 0 or more bytes, got {max_size!r}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"PHP-serialized data must be bytes, not {type(data).__name__}")
        self._data = bytes(data)
        if len(self._data) > max_size:
            raise SessionDataError(
                f"PHP-serialized data is {len(self._data)} bytes, over the limit of {max_size}"
            )
        self._max_depth = max_depth
        self._slots: list[Any] = []
        # Where each numbered value was stored (container number, key): PHP's
        # numbers point at those places, so a later value under the same key
        # (data PHP never writes, but reads) replaces what they point to.
        # _holder, filled only for such repeated keys, maps a place to the
        # number of the value now there.
        self._in: list[int] = []
        self._at: list[Any] = []
        self._holder: dict[tuple[int, Any], int] = {}
        self._container_now = 0
        self._key_now: Any = None
        self._replacing = False
        self._containers = [0]
        self._open: dict[int, _Array] = {}
        self._budget = [len(self._data)]

    @property
    def data(self) -> bytes:
        """The buffer being decoded."""
        return self._data

    def read(self, offset: int = 0) -> tuple[Any, int]:
        """
        Decode the one value starting at ``offset``.

        Returns:
            The value and the offset just past it.

        Raises:
            SessionDataError: the value is malformed, truncated, too deep,
                or refers to a value that does not exist.
        """
        if not 0 <= offset <= len(self._data):
            raise SessionDataError(f"offset {offset} is outside the {len(self._data)}-byte data")
        self._container_now, self._key_now = self._container(), None
        self._replacing = False
        return self._value(offset, 0)

    # -- helpers ---------------------------------------------------------

    def _fail(self, problem: str, at: int) -> SessionDataError:
        return SessionDataError(f"PHP-serialized data: {problem} at byte {at}")

    def _expect(self, pos: int, token: bytes) -> int:
        end = pos + len(token)
        if self._data[pos:end] != token:
            if end > len(self._data):
                raise self._fail(f"truncated, expected {token.decode()!r}", pos)
            raise self._fail(f"expected {token.decode()!r}", pos)
        return end

    def _match(self, pattern: re.Pattern[bytes], pos: int, what: str) -> tuple[bytes, int]:
        found = pattern.match(self._data, pos, min(len(self._data), pos + 400))
        if found is None:
            if pos >= len(self._data):
                raise self._fail(f"truncated, expected {what}", pos)
            raise self._fail(f"expected {what}", pos)
        return found.group(), found.end()

    def _length(self, pos: int, what: str, *, signed: bool = False) -> tuple[int, int]:
        # PHP reads an object's property count and a C: object's data length
        # with a sign allowed ("+2", "-0"); every other length without.
        digits, end = self._match(_INT if signed else _UINT, pos, what)
        if len(digits.lstrip(b"+-")) > _MAX_DIGITS:
            raise self._fail(f"{what} has {len(digits)} digits", pos)
        number = int(digits)
        if number < 0:
            raise self._fail(f"{what} is negative", pos)
        return number, end

    def _quoted(self, pos: int, what: str) -> tuple[bytes, int]:
        """``<len>:"<len bytes>"`` at ``pos``: the bytes and the offset after the quote."""
        length, pos = self._length(pos, f"{what} length")
        pos = self._expect(pos, b':"')
        end = pos + length
        if end + 1 > len(self._data):
            raise self._fail(
                f"{what} length {length} runs past the end ({len(self._data) - pos} bytes left)",
                pos,
            )
        if self._data[end : end + 1] != b'"':
            raise self._fail(f"{what} of {length} bytes is not followed by '\"'", end)
        return self._data[pos:end], end + 1

    def _class_name(self, pos: int) -> tuple[str, int]:
        start = pos
        raw, pos = self._quoted(pos, "class name")
        if not _CLASS_NAME.fullmatch(raw):
            raise self._fail(f"class name {raw!r} is not a valid PHP class name", start)
        # PHP allows any byte from 0x80 in a name: not UTF-8, it stays lossless
        return raw.decode("utf-8", "surrogateescape"), pos

    def _count(
        self, pos: int, what: str, min_bytes: int, *, signed: bool = False
    ) -> tuple[int, int]:
        start = pos
        count, pos = self._length(pos, f"{what} count", signed=signed)
        left = len(self._data) - pos
        if count * min_bytes > left:
            # Refused before anything is allocated for it.
            raise self._fail(
                f"{what} declares {count} elements but only {left} bytes remain", start
            )
        return count, pos

    # -- values ----------------------------------------------------------

    def _value(self, pos: int, depth: int) -> tuple[Any, int]:
        data = self._data
        fast = _FAST_VALUE.match(data, pos)
        if fast is not None:
            group = fast.lastindex
            value: Any = None
            if group == 1:
                value = int(fast.group(1))
                if _INT64_MIN <= value <= _INT64_MAX:
                    self._number(value)
                    return value, fast.end()
            elif group == 2:
                start = fast.end()
                end = start + int(fast.group(2))
                if data[end : end + 2] == b'";':
                    value = text_or_bytes(data[start:end])
                    self._number(value)
                    return value, end + 2
            else:
                value = fast.group(3) == b"1" if group == 3 else None
                self._number(value)
                return value, fast.end()
        tag = data[pos : pos + 2]
        if len(tag) < 2 and (not tag or tag in b"NbidsSarROCE"):
            raise self._fail("truncated, expected a value", pos)
        if tag == b"R:":
            value, end, target = self._reference(pos)
            if self._replacing:
                # the place now refers to the target's value
                self._holder[self._container_now, self._key_now] = target
            return value, end
        slot = self._number(None)
        if tag == b"N;":
            value, end = None, pos + 2
        elif tag == b"b:":
            flag = data[pos + 2 : pos + 3]
            if flag not in (b"0", b"1"):
                raise self._fail("a bool must be b:0 or b:1", pos + 2)
            value, end = flag == b"1", self._expect(pos + 3, b";")
        elif tag == b"i:":
            digits, end = self._match(_INT, pos + 2, "an integer")
            value = int(digits) if len(digits) <= 21 else None
            if value is None or not _INT64_MIN <= value <= _INT64_MAX:
                raise self._fail("integer out of PHP's 64-bit range", pos + 2)
            end = self._expect(end, b";")
        elif tag == b"d:":
            text, end = self._match(_FLOAT, pos + 2, "a float")
            if text == b"NAN":
                value = math.nan
            elif text.endswith(b"INF"):
                value = -math.inf if text.startswith(b"-") else math.inf
            else:
                value = float(text)
            end = self._expect(end, b";")
        elif tag == b"s:":
            raw, end = self._quoted(pos + 2, "string")
            value, end = text_or_bytes(raw), self._expect(end, b";")
        elif tag == b"S:":
            raw, end = self._escaped(pos + 2)
            value, end = text_or_bytes(raw), self._expect(end, b";")
        elif tag == b"r:":
            value, end, _ = self._reference(pos)
        elif tag in (b"a:", b"O:", b"C:", b"E:"):
            if tag != b"E:" and depth >= self._max_depth:
                raise self._fail(f"nested deeper than max_depth={self._max_depth}", pos)
            if tag == b"a:":
                value, end = self._array(pos + 2, slot, depth + 1)
            elif tag == b"O:":
                value, end = self._object(pos + 2, slot, depth + 1)
            elif tag == b"C:":
                value, end = self._custom(pos + 2, depth + 1)
            else:
                value, end = self._enum(pos + 2)
        else:
            raise self._fail(f"unknown type {tag[:1]!r}", pos)
        self._slots[slot] = value
        return value, end

    def _number(self, value: Any) -> int:
        """Give ``value`` the next number, at the place being filled."""
        slot = len(self._slots)
        self._slots.append(value)
        self._in.append(self._container_now)
        self._at.append(self._key_now)
        if self._replacing:
            self._holder[self._container_now, self._key_now] = slot
        return slot

    def _reference(self, pos: int) -> tuple[Any, int, int]:
        """An ``r:``/``R:`` at ``pos``: the value, the end, the slot it resolved to."""
        number, end = self._length(pos + 2, "a reference number")
        end = self._expect(end, b";")
        # r:/R: count from 1 over the values decoded so far (not this one).
        is_copy = self._data[pos : pos + 1] == b"r"
        known = len(self._slots) - (1 if is_copy else 0)
        if not 1 <= number <= known:
            raise self._fail(f"reference to value {number} of {known}", pos)
        slot = number - 1
        if self._replacing or self._holder:
            place = (self._in[slot], self._at[slot])
            if self._replacing and place == (self._container_now, self._key_now):
                # a value under a repeated key referring to what it replaces
                raise self._fail(f"reference {number} refers to the value it replaces", pos)
            slot = self._holder.get(place, slot)
        value = self._slots[slot]
        if is_copy and not isinstance(value, _OBJECTS):
            # PHP writes r: only for objects, and its unserialize() refuses
            # any other target: so does this decoder.
            raise self._fail(f"r:{number} refers to a value that is not an object", pos)
        building = self._open.get(slot)
        if building is not None:
            building.referenced = True
            return building.items, end, slot
        return value, end, slot

    def _container(self) -> int:
        self._containers[0] += 1
        return self._containers[0]

    def _escaped(self, pos: int) -> tuple[bytes, int]:
        # The S: form: the declared length counts decoded bytes; "\\xx" is one.
        length, pos = self._length(pos, "string length")
        pos = self._expect(pos, b':"')
        data = self._data
        out = bytearray()
        while len(out) < length:
            if pos >= len(data):
                raise self._fail(f"string length {length} runs past the end", pos)
            byte = data[pos]
            if byte == 0x5C:  # backslash
                pair = data[pos + 1 : pos + 3]
                if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                    raise self._fail("bad \\xx escape in an S: string", pos)
                out.append(int(pair, 16))
                pos += 3
            else:
                out.append(byte)
                pos += 1
        return bytes(out), self._expect(pos, b'"')

    def _array(self, pos: int, slot: int, depth: int) -> tuple[Any, int]:
        count, pos = self._count(pos, "array", _MIN_ELEMENT)
        pos = self._expect(pos, b":{")
        building = _Array()
        self._slots[slot] = building.items
        self._open[slot] = building
        items = building.items
        container = self._container()
        try:
            for _ in range(count):
                key, pos = self._key(pos)
                key = _array_key(key)
                self._container_now, self._key_now = container, key
                self._replacing = key in items
                value, pos = self._value(pos, depth)
                items[key] = value
        finally:
            del self._open[slot]
        pos = self._expect(pos, b"}")
        if not building.referenced and all(key == index for index, key in enumerate(items)):
            return list(items.values()), pos
        return items, pos

    def _key(self, pos: int) -> tuple[Any, int]:
        data = self._data
        fast = _FAST_KEY.match(data, pos)
        if fast is not None:
            if fast.lastindex == 1:
                number = int(fast.group(1))
                if _INT64_MIN <= number <= _INT64_MAX:
                    return number, fast.end()
            else:
                start = fast.end()
                end = start + int(fast.group(2))
                if data[end : end + 2] == b'";':
                    return text_or_bytes(data[start:end]), end + 2
        tag = data[pos : pos + 2]
        if tag == b"i:":
            digits, end = self._match(_INT, pos + 2, "an integer key")
            key = int(digits) if len(digits) <= 21 else None
            if key is None or not _INT64_MIN <= key <= _INT64_MAX:
                raise self._fail("integer key out of PHP's 64-bit range", pos + 2)
            return key, self._expect(end, b";")
        if tag == b"s:":
            raw, end = self._quoted(pos + 2, "key")
            return text_or_bytes(raw), self._expect(end, b";")
        if tag == b"S:":
            raw, end = self._escaped(pos + 2)
            return text_or_bytes(raw), self._expect(end, b";")
        if len(tag) < 2:
            raise self._fail("truncated, expected an array key", pos)
        raise self._fail("an array key must be an integer or a string", pos)

    def _object(self, pos: int, slot: int, depth: int) -> tuple[PhpObject, int]:
        name, pos = self._class_name(pos)
        pos = self._expect(pos, b":")
        count, pos = self._count(pos, "object", _MIN_ELEMENT, signed=True)
        pos = self._expect(pos, b":{")
        obj = PhpObject(name)
        # Filled in place so a property referring back to it finds it.
        self._slots[slot] = obj
        container = self._container()
        seen: set[Any] = set()
        for _ in range(count):
            key, pos = self._key(pos)
            self._container_now, self._key_now = container, key
            self._replacing = key in seen
            seen.add(key)
            value, pos = self._value(pos, depth)
            set_property(obj, key, value)
        return obj, self._expect(pos, b"}")

    def _custom(self, pos: int, depth: int) -> tuple[PhpCustomObject, int]:
        name, pos = self._class_name(pos)
        pos = self._expect(pos, b":")
        length, pos = self._length(pos, "custom object data length", signed=True)
        pos = self._expect(pos, b":{")
        end = pos + length
        if end + 1 > len(self._data):
            raise self._fail(
                f"custom object data length {length} runs past the end "
                f"({len(self._data) - pos} bytes left)",
                pos,
            )
        raw = self._data[pos:end]
        self._count_nested(raw, depth)
        return PhpCustomObject(name, raw), self._expect(end, b"}")

    def _count_nested(self, raw: bytes, depth: int) -> None:
        # PHP numbers the values a Serializable's own (un)serialize() call
        # reads in the outer sequence. When the data is serialized values,
        # number them too; when it is anything else, PHP did not either.
        # Nested C: objects are read again at each level: a budget of the
        # input's size keeps hostile nesting from multiplying the work.
        if not raw or raw[1:2] not in (b":", b";") or len(raw) > self._budget[0]:
            return
        self._budget[0] -= len(raw)
        nested = Unserializer.__new__(Unserializer)
        nested._data = raw
        nested._max_depth = self._max_depth - depth + 1
        # shared: PHP numbers them in one sequence
        nested._slots, nested._in, nested._at = self._slots, self._in, self._at
        nested._holder = self._holder
        nested._containers = self._containers
        nested._container_now, nested._key_now = nested._container(), None
        nested._replacing = False
        nested._open = {}
        nested._budget = self._budget
        known = len(self._slots)
        pos = 0
        try:
            while pos < len(raw):
                _, pos = nested._value(pos, 0)
        except SessionDataError:
            del self._slots[known:]
            del self._in[known:]
            del self._at[known:]

    def _enum(self, pos: int) -> tuple[PhpEnum, int]:
        start = pos
        raw, pos = self._quoted(pos, "enum name")
        pos = self._expect(pos, b";")
        class_part, colon, case = raw.partition(b":")
        if not colon or not _CLASS_NAME.fullmatch(class_part) or not _IDENTIFIER.fullmatch(case):
            raise self._fail(f"enum {raw!r} is not Class:Case", start)
        return PhpEnum(
            class_part.decode("utf-8", "surrogateescape"), case.decode("utf-8", "surrogateescape")
        ), pos


def unserialize_prefix(
    data: bytes,
    offset: int = 0,
    *,
    max_depth: int = 64,
    max_size: int = 16 * 1024 * 1024,
) -> tuple[Any, int]:
    """
    Decode the one PHP-serialized value that starts at ``offset`` of ``data``.

    What follows the value is left alone: the offset just past it is
    returned with it. References number from this value (use
    :class:`Unserializer` to read several values of one sequence).

    Returns:
        ``(value, end_offset)``.

    Raises:
        SessionDataError: malformed, truncated, too deep or too large data
            (the message gives the byte offset).
        ConfigurationError: ``max_depth``/``max_size`` out of range.
    """
    return Unserializer(data, max_depth=max_depth, max_size=max_size).read(offset)


def unserialize(data: bytes, *, max_depth: int = 64, max_size: int = 16 * 1024 * 1024) -> Any:
    """
    Decode what PHP's ``serialize()`` wrote (see the module docstring for
    the value mapping).

    Unlike PHP, bytes after the value are refused rather than ignored.

    Raises:
        SessionDataError: malformed, truncated, trailing, too deep or too
            large data (the message gives the byte offset).
        ConfigurationError: ``max_depth``/``max_size`` out of range.
    """
    value, end = unserialize_prefix(data, 0, max_depth=max_depth, max_size=max_size)
    if end != len(data):
        raise SessionDataError(
            f"PHP-serialized data: {len(data) - end} unexpected bytes after the value at byte {end}"
        )
    return value
