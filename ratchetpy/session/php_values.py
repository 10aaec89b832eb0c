"""
The Python values PHP's serialized data decodes to (:mod:`ratchetpy.session.serialize`).

Objects stay data: a class name is just a string, nothing is imported or called.

Value mapping:

=========================  ====================================================
PHP                        Python
=========================  ====================================================
``N;``                     ``None``
``b:0;`` / ``b:1;``        ``False`` / ``True``
``i:42;``                  ``int`` (PHP's 64-bit range; outside it is refused)
``d:0.1;``                 ``float``; ``INF``, ``-INF``, ``NAN`` and ``-0`` as
                           PHP writes them (``math.inf``, ``-math.inf``,
                           ``math.nan``, ``-0.0``)
``s:5:"Zoë";``             ``str`` when the bytes are valid UTF-8, else
                           ``bytes`` (lengths count bytes, as in PHP); the
                           legacy escaped form ``S:`` PHP still reads likewise
``a:2:{...}``              ``list`` when the keys are exactly 0..n-1 in order,
                           else ``dict``; keys are ``int`` or ``str`` as PHP has
                           them (a decimal string key such as ``"5"`` is the
                           int ``5``, as PHP's arrays make it; a key that is not
                           UTF-8 stays ``bytes``)
``O:3:"Foo":1:{...}``      :class:`PhpObject`: ``class_name`` and
                           ``properties`` by plain name (PHP's mangled
                           ``\\0*\\0name``/``\\0Class\\0name`` unmangled;
                           ``visibility`` and ``declared_in`` keep what the
                           mangling said). Objects with ``__serialize()``
                           (``ArrayObject``, ...) also use ``O:``; their
                           properties are what ``__serialize()`` returned,
                           integer keys included
``C:3:"Foo":4:{...}``      :class:`PhpCustomObject`: ``class_name`` and the raw
                           ``data`` bytes of ``Serializable::serialize()``
``E:11:"Suit:Hearts";``    :class:`PhpEnum`: ``class_name`` and ``case``
``r:3;`` / ``R:3;``        the same Python object as the value they point to
                           (``r:`` only to an object, as PHP requires)
=========================  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PhpCustomObject", "PhpEnum", "PhpObject"]


@dataclass(eq=True)
class PhpObject:
    """
    A PHP object (``O:``): its class name and properties, nothing callable.

    Attributes:
        class_name: the class as PHP wrote it (``"App\\\\Models\\\\User"``);
            bytes that are not UTF-8 are decoded with ``surrogateescape``.
        properties: values by plain property name: a private ``$a`` of
            ``Foo`` (serialized as ``"\\0Foo\\0a"``) and a protected
            ``$b`` (``"\\0*\\0b"``) are ``"a"`` and ``"b"``. Should a
            parent's private property share its name with another property,
            the other one is kept here.
        visibility: ``"public"``, ``"protected"`` or ``"private"`` for each
            name in ``properties``.
        declared_in: for private properties, the class that declares them.
    """

    class_name: str
    properties: dict[Any, Any] = field(default_factory=dict)
    visibility: dict[Any, str] = field(default_factory=dict)
    declared_in: dict[Any, str] = field(default_factory=dict)

    def get(self, name: str | int, default: Any = None) -> Any:
        """The property ``name`` (plain name), or ``default``."""
        return self.properties.get(name, default)


@dataclass(frozen=True)
class PhpCustomObject:
    """
    An object of a class implementing PHP's ``Serializable`` (``C:``).

    Attributes:
        class_name: the class as PHP wrote it.
        data: exactly what its ``serialize()`` method returned, undecoded
            (often itself serialized data: :func:`~ratchetpy.session.serialize.unserialize` it if you
            trust it to be).
    """

    class_name: str
    data: bytes


@dataclass(frozen=True)
class PhpEnum:
    """A PHP 8.1+ enum case (``E:``): ``Suit::Hearts`` is ``PhpEnum("Suit", "Hearts")``."""

    class_name: str
    case: str


def text_or_bytes(raw: bytes) -> str | bytes:
    """``raw`` as ``str`` when it is valid UTF-8, else the bytes themselves."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def set_property(obj: PhpObject, key: Any, value: Any) -> None:
    """
    Store one serialized property on ``obj`` under its plain name.

    ``"\\0Class\\0name"`` is private to ``Class``, ``"\\0*\\0name"``
    protected; the name is unmangled and ``visibility``/``declared_in`` say
    what the mangling did.
    """
    visibility, owner = "public", ""
    # A malformed mangled name stays as it is (public), as PHP keeps it for
    # a class it does not know (it refuses it for a declared one).
    if isinstance(key, str) and key.startswith("\0"):
        parts = key.split("\0")
        if len(parts) == 3 and parts[1] and parts[2]:
            _, owner, key = parts
            visibility = "protected" if owner == "*" else "private"
    elif isinstance(key, bytes) and key.startswith(b"\0"):
        raw = key.split(b"\0")
        if len(raw) == 3 and raw[1] and raw[2]:
            owner, key = raw[1].decode("utf-8", "surrogateescape"), text_or_bytes(raw[2])
            visibility = "protected" if owner == "*" else "private"
    if visibility == "private" and owner != obj.class_name and key in obj.properties:
        return  # a parent's private property never hides the object's own
    obj.properties[key] = value
    obj.visibility[key] = visibility
    if visibility == "private":
        obj.declared_in[key] = owner
    else:
        obj.declared_in.pop(key, None)
