"""
ratchetpy.session.serialize: every PHP type, reference numbering and every
refusal, on literals PHP wrote (php-cli 8.2) and on PHP's own output.

The fuzz test at the end has one php-cli process serialize a batch of
generated values and checks each decodes to what was generated.
"""

from __future__ import annotations

import base64
import json
import math
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.serialize import (
    MAX_DEPTH_LIMIT,
    PhpCustomObject,
    PhpEnum,
    PhpObject,
    Unserializer,
    unserialize,
    unserialize_prefix,
)
from tests.support.php import require_php, run_php

# What PHP 8.2's serialize() wrote for a class Foo { private $a = 1;
# protected $b = 2; public $c = 3; }, shared twice, an array held by two
# references and a few scalars; the bytes are PHP's, \0 included.
PHP_PAYLOAD = (
    b'a:6:{s:1:"x";a:2:{i:0;i:1;i:1;i:2;}s:1:"y";R:2;'
    b's:1:"o";O:3:"Foo":3:{s:6:"\0Foo\0a";i:1;s:4:"\0*\0b";i:2;s:1:"c";i:3;}s:2:"o2";r:5;'
    b's:1:"f";d:0.1;s:1:"s";s:4:"Zo\xc3\xab";}'
)


# -- scalars --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"N;", None),
        (b"b:0;", False),
        (b"b:1;", True),
        (b"i:0;", 0),
        (b"i:-42;", -42),
        (b"i:+5;", 5),
        (b"i:9223372036854775807;", 2**63 - 1),
        (b"i:-9223372036854775808;", -(2**63)),
        (b"d:0.1;", 0.1),
        (b"d:1;", 1.0),
        (b"d:1.0E+100;", 1e100),
        (b"d:2.5E-300;", 2.5e-300),
        (b"d:.5;", 0.5),
        (b"d:5.;", 5.0),
        (b"d:1e5;", 100000.0),
        (b"d:INF;", math.inf),
        (b"d:-INF;", -math.inf),
        (b's:0:"";', ""),
        (b's:5:"a"b;c";', 'a"b;c'),
        # lengths count bytes: "Zoë" is 4, the emoji 4 more
        (b's:4:"Zo\xc3\xab";', "Zoë"),
        (b's:4:"\xf0\x9f\x98\x80";', "\U0001f600"),
        (b's:2:"\xff\xfe";', b"\xff\xfe"),
        (b's:3:"a\0b";', "a\0b"),
        # the escaped S: form PHP still reads
        (b'S:3:"a\\62c";', "abc"),
        (b'S:2:"\\ff\\fe";', b"\xff\xfe"),
    ],
)
def test_scalars(data: bytes, expected: Any) -> None:
    value = unserialize(data)
    assert type(value) is type(expected)
    assert value == expected


def test_nan_and_negative_zero() -> None:
    assert math.isnan(unserialize(b"d:NAN;"))
    zero = unserialize(b"d:-0;")
    assert zero == 0.0 and math.copysign(1.0, zero) == -1.0
    assert math.copysign(1.0, unserialize(b"d:0;")) == 1.0


# -- arrays ---------------------------------------------------------------


def test_arrays_with_keys_0_to_n_are_lists() -> None:
    assert unserialize(b"a:0:{}") == []
    assert unserialize(b'a:2:{i:0;s:1:"a";i:1;a:1:{i:0;N;}}') == ["a", [None]]


def test_other_arrays_are_dicts_with_php_keys() -> None:
    assert unserialize(b"a:2:{i:1;i:1;i:0;i:0;}") == {1: 1, 0: 0}
    assert unserialize(b"a:1:{i:1;b:1;}") == {1: True}
    mixed = unserialize(b'a:3:{s:2:"\xc3\xa9";s:2:"\xc3\xbc";i:5;b:1;s:2:"5x";b:0;}')
    assert mixed == {"é": "ü", 5: True, "5x": False}
    assert unserialize(b'a:1:{s:2:"\xff\xfe";i:1;}') == {b"\xff\xfe": 1}


def test_decimal_string_keys_become_ints_as_in_php() -> None:
    # PHP: unserialize('a:1:{s:1:"0";i:1;}') is [0 => 1], a list here
    assert unserialize(b'a:1:{s:1:"0";i:1;}') == [1]
    assert unserialize(b'a:1:{s:2:"-7";i:1;}') == {-7: 1}
    for key in (b"-0", b"05", b" 5", b"5 ", b"9223372036854775808", b"1.5"):
        data = b'a:1:{s:%d:"%s";i:1;}' % (len(key), key)
        assert unserialize(data) == {key.decode(): 1}


def test_a_later_duplicate_key_wins() -> None:
    assert unserialize(b"a:2:{i:0;i:1;i:0;i:2;}") == [2]


# -- objects, custom objects, enums ---------------------------------------


def test_objects_unmangle_property_names_and_keep_visibility() -> None:
    obj = unserialize(PHP_PAYLOAD)["o"]
    assert obj == PhpObject(
        "Foo",
        {"a": 1, "b": 2, "c": 3},
        {"a": "private", "b": "protected", "c": "public"},
        {"a": "Foo"},
    )
    assert obj.get("c") == 3 and obj.get("missing", "d") == "d"


def test_a_parents_private_property_does_not_hide_the_objects_own() -> None:
    # class P { private $x = "parent"; } class C extends P { public $x = "child"; }
    data = b'O:1:"C":2:{s:1:"x";s:5:"child";s:4:"\0P\0x";s:6:"parent";}'
    obj = unserialize(data)
    assert obj.properties == {"x": "child"}
    assert obj.visibility == {"x": "public"}
    assert obj.declared_in == {}


def test_object_property_names_stay_strings() -> None:
    obj = unserialize(b'O:8:"stdClass":1:{s:1:"0";i:1;}')
    assert obj.properties == {"0": 1}


def test_objects_with_serialize_method_keep_integer_keys() -> None:
    # PHP 8.2's serialize(new ArrayObject([1, 2]))
    obj = unserialize(b'O:11:"ArrayObject":4:{i:0;i:0;i:1;a:2:{i:0;i:1;i:1;i:2;}i:2;a:0:{}i:3;N;}')
    assert obj == PhpObject(
        "ArrayObject",
        {0: 0, 1: [1, 2], 2: [], 3: None},
        dict.fromkeys(range(4), "public"),
    )


def test_signs_where_php_reads_them() -> None:
    # PHP reads an object's count and a C: length as signed numbers
    assert unserialize(b'O:8:"stdClass":+0:{}') == PhpObject("stdClass")
    assert unserialize(b'O:8:"stdClass":-0:{}') == PhpObject("stdClass")
    assert unserialize(b'C:1:"A":+2:{ab}') == PhpCustomObject("A", b"ab")
    assert unserialize(b"a:00:{}") == [] and unserialize(b's:01:"a";') == "a"


def test_malformed_property_names_stay_as_they_are_as_php_keeps_them() -> None:
    # PHP keeps these on a class it does not know (and on stdClass)
    obj = unserialize(b'O:1:"A":4:{s:1:"\0";i:1;s:3:"\0ab";i:2;s:2:"\0\0";i:3;s:3:"\0x\0";i:4;}')
    assert obj.properties == {"\0": 1, "\0ab": 2, "\0\0": 3, "\0x\0": 4}
    assert set(obj.visibility.values()) == {"public"} and obj.declared_in == {}


def test_mangled_names_that_are_not_utf8() -> None:
    obj = unserialize(b'O:1:"A":2:{s:5:"\0\xff\0id";i:1;s:5:"\0*\0\xfe\xfd";i:2;}')
    assert obj.properties == {"id": 1, b"\xfe\xfd": 2}
    assert obj.declared_in == {"id": "\udcff"}
    assert obj.visibility == {"id": "private", b"\xfe\xfd": "protected"}


def test_namespaced_class_names() -> None:
    obj = unserialize(b'O:15:"App\\Models\\User":0:{}')
    assert obj.class_name == "App\\Models\\User"


def test_class_names_that_are_not_utf8_keep_their_bytes() -> None:
    obj = unserialize(b'O:3:"F\xffo":0:{}')
    assert obj.class_name == "F\udcffo"
    assert obj.class_name.encode("utf-8", "surrogateescape") == b"F\xffo"
    assert unserialize(b'E:5:"\xffa:Ab";') == PhpEnum("\udcffa", "Ab")


def test_custom_objects_keep_their_data_undecoded() -> None:
    value = unserialize(b'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}')
    assert value == PhpCustomObject("ArrayObject", b"x:i:0;a:0:{};m:a:0:{}")


def test_enums() -> None:
    assert unserialize(b'E:11:"Suit:Hearts";') == PhpEnum("Suit", "Hearts")
    # PHP writes a repeated case as r:
    assert unserialize(b'a:2:{i:0;E:11:"Suit:Hearts";i:1;r:2;}') == [PhpEnum("Suit", "Hearts")] * 2


# -- references -----------------------------------------------------------


def test_references_are_the_same_python_object() -> None:
    value = unserialize(PHP_PAYLOAD)
    assert value["x"] == [1, 2] and value["y"] is value["x"]
    assert value["o2"] is value["o"]
    assert value["f"] == 0.1 and value["s"] == "Zoë"


def test_an_object_can_contain_itself() -> None:
    # $o = new stdClass; $o->self = $o;
    obj = unserialize(b'O:8:"stdClass":1:{s:4:"self";r:1;}')
    assert obj.properties["self"] is obj


def test_an_array_referring_to_itself_stays_a_dict() -> None:
    # $a = []; $a["me"] = &$a;  and  $a = [1]; $a[] = &$a;
    outer = unserialize(b'a:1:{s:2:"me";a:1:{s:2:"me";R:2;}}')
    assert outer["me"]["me"] is outer["me"]
    listy = unserialize(b"a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}")
    assert isinstance(listy, list)
    inner = listy[1]
    assert isinstance(inner, dict) and inner[1] is inner and inner[0] == 1


def test_r_takes_a_number_and_R_does_not() -> None:
    # slots: 1 the array, 2 the object, 3 the r: copy, 4 the last int;
    # R:3 refers to the r: value (the object), so the R: must not count
    value = unserialize(b'a:4:{i:0;O:8:"stdClass":0:{}i:1;r:2;i:2;R:3;i:3;R:2;}')
    assert value[0] is value[1] is value[2] is value[3]


def test_values_after_a_custom_object_are_numbered_as_php_numbers_them() -> None:
    # PHP 8.2, class S implements Serializable (serialize() returns
    # serialize([1, 2])): [new S, $o, $o] numbers the 3 nested values too,
    # so the second $o is r:6, not r:3.
    value = unserialize(
        b'a:3:{i:0;C:1:"S":22:{a:2:{i:0;i:1;i:1;i:2;}}i:1;O:8:"stdClass":0:{}i:2;r:6;}'
    )
    assert value[0] == PhpCustomObject("S", b"a:2:{i:0;i:1;i:1;i:2;}")
    assert value[2] is value[1]


def test_custom_object_data_that_is_not_serialized_takes_no_numbers() -> None:
    value = unserialize(b'a:3:{i:0;C:1:"S":5:{hello}i:1;O:8:"stdClass":0:{}i:2;r:3;}')
    assert value[2] is value[1]


def test_php_builtin_classes_keep_references_numbered_right() -> None:
    require_php()
    done = run_php(
        r"""<?php
        $o = new stdClass; $o->n = 1;
        $storage = new SplObjectStorage; $storage[$o] = 'data';
        $date = new DateTime('2020-01-01 00:00:00', new DateTimeZone('UTC'));
        echo serialize([new ArrayObject([$o, 'x' => [1, 2]]), $o, $storage, $o, $date, $date,
                        new ArrayIterator([$o]), $o]);
        """
    )
    value = unserialize(done.stdout)
    shared = value[1]
    assert shared == PhpObject("stdClass", {"n": 1}, {"n": "public"})
    assert value[0].class_name == "ArrayObject" and value[0].properties[1][0] is shared
    assert value[0].properties[1]["x"] == [1, 2]
    assert value[2].class_name == "SplObjectStorage" and value[2].properties[0] == [shared, "data"]
    assert value[3] is shared and value[7] is shared
    assert value[4].properties == {
        "date": "2020-01-01 00:00:00.000000",
        "timezone_type": 3,
        "timezone": "UTC",
    }
    assert value[5] is value[4]
    assert value[6].properties[1][0] is shared


def test_custom_object_data_that_is_partly_serialized_takes_no_numbers() -> None:
    # "N;x" starts like serialized data but is not: nothing is numbered
    value = unserialize(b'a:3:{i:0;C:1:"S":3:{N;x}i:1;O:8:"stdClass":0:{}i:2;r:3;}')
    assert value[2] is value[1]


def test_many_and_nested_custom_objects_decode() -> None:
    count = 2000
    body = b"".join(b'i:%d;C:1:"S":6:{a:0:{}}' % i for i in range(count))
    value = unserialize(b"a:%d:{%s}" % (count, body))
    assert value == [PhpCustomObject("S", b"a:0:{}")] * count
    nested = b"N;"
    for _ in range(60):
        nested = b'C:1:"S":%d:{%s}' % (len(nested), nested)
    assert unserialize(nested).class_name == "S"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # what php-cli 8.2's unserialize() gives: a number points at a place,
        # and a repeated key puts a new value there (PHP never writes this)
        (b'a:3:{s:1:"x";i:1;s:1:"x";i:5;s:1:"y";R:2;}', {"x": 5, "y": 5}),
        (b'a:3:{s:1:"x";i:1;s:1:"x";i:5;s:1:"y";R:3;}', {"x": 5, "y": 5}),
        (b'a:2:{s:1:"x";a:1:{i:0;i:7;}s:1:"x";R:3;}', {"x": 7}),
        (b'a:3:{s:1:"x";a:1:{i:0;i:7;}s:1:"x";i:1;s:1:"y";R:3;}', {"x": 1, "y": 7}),
        (
            b'O:8:"stdClass":3:{s:1:"x";i:1;s:1:"x";i:5;s:1:"y";R:2;}',
            PhpObject("stdClass", {"x": 5, "y": 5}, {"x": "public", "y": "public"}),
        ),
    ],
)
def test_references_to_a_place_a_repeated_key_wrote_again(data: bytes, expected: Any) -> None:
    assert unserialize(data) == expected


def test_a_repeated_key_referring_to_what_it_replaces() -> None:
    for data in (
        b'a:2:{s:1:"x";i:1;s:1:"x";R:2;}',
        b'a:2:{s:1:"x";O:8:"stdClass":0:{}s:1:"x";r:2;}',
        b'O:8:"stdClass":2:{s:1:"x";i:1;s:1:"x";R:2;}',
    ):
        with pytest.raises(SessionDataError, match="reference 2 refers to the value it replaces"):
            unserialize(data)
    # the old object is gone from its place: r:2 now finds an int there
    with pytest.raises(SessionDataError, match="r:2 refers to a value that is not an object"):
        unserialize(b'a:3:{s:1:"x";O:8:"stdClass":0:{}s:1:"x";i:5;s:1:"y";r:2;}')
    # nested in the new value, the place holds the array being built
    value = unserialize(b'a:2:{s:1:"x";i:1;s:1:"x";a:1:{i:0;R:2;}}')
    assert value["x"][0] is value["x"]


def test_unserializer_shares_numbers_across_reads() -> None:
    data = b'O:8:"stdClass":0:{}r:1;'
    reader = Unserializer(data)
    first, end = reader.read(0)
    second, end = reader.read(end)
    assert second is first and end == len(data)


def test_unserialize_prefix_stops_after_the_value() -> None:
    assert unserialize_prefix(b"xxi:5;rest", 2) == (5, 6)
    assert unserialize_prefix(b'a:1:{i:0;s:1:"|";}tail') == (["|"], 18)


# -- refusals -------------------------------------------------------------


def test_every_truncation_of_a_real_payload_is_refused_with_its_offset() -> None:
    for cut in range(len(PHP_PAYLOAD)):
        with pytest.raises(SessionDataError, match=r"at byte \d+"):
            unserialize(PHP_PAYLOAD[:cut])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated, expected a value at byte 0"),
        (b"x", "unknown type b'x' at byte 0"),
        (b"a", "truncated, expected a value at byte 0"),
        (b"x:1;", "unknown type b'x' at byte 0"),
        (b"i:;", "expected an integer at byte 2"),
        (b"i:1", "truncated, expected ';' at byte 3"),
        (b"i:9223372036854775808;", "out of PHP's 64-bit range at byte 2"),
        (b"i:" + b"9" * 500 + b";", "out of PHP's 64-bit range at byte 2"),
        (b"b:2;", "b:0 or b:1 at byte 2"),
        (b"d:1e;", "expected ';' at byte 3"),
        (b"d:-NAN;", "expected a float at byte 2"),
        (b"d:+INF;", "expected a float at byte 2"),
        (b"d:inf;", "expected a float at byte 2"),
        (b's:10:"abc";', "string length 10 runs past the end (5 bytes left) at byte 6"),
        (b's:2:"abc";', "string of 2 bytes is not followed by '\"' at byte 7"),
        (b's:-1:"";', "expected string length at byte 2"),
        (b's:99999999999999999999999:"a";', "string length has 23 digits at byte 2"),
        (b's:1:"a"', "truncated, expected ';' at byte 7"),
        (b'S:1:"\\zz";', "bad \\xx escape in an S: string at byte 5"),
        (b"a:1:{i:0;i:1;", "truncated, expected '}' at byte 13"),
        (b"a:1:{i:0;i:1;]", "expected '}' at byte 13"),
        (b"a:1:{d:1.5;i:1;}", "an array key must be an integer or a string at byte 5"),
        (b"a:1:{N;i:1;}", "an array key must be an integer or a string at byte 5"),
        (b"a:1:{i:0;}", "unknown type b'}' at byte 9"),
        (b'O:3:"a-b":0:{}', "is not a valid PHP class name at byte 2"),
        (b'O:4:"\\Foo":0:{}', "is not a valid PHP class name at byte 2"),
        (b'O:3:"a b":0:{}', "is not a valid PHP class name at byte 2"),
        (b'C:1:"A":10:{abc}', "custom object data length 10 runs past the end"),
        (b'C:1:"A":-1:{}', "custom object data length is negative at byte 8"),
        (b'O:8:"stdClass":-1:{}', "object count is negative at byte 15"),
        (b"a:+0:{}", "expected array count at byte 2"),
        (b's:+1:"a";', "expected string length at byte 2"),
        (b'E:4:"Suit";', "enum b'Suit' is not Class:Case at byte 2"),
        (b'E:6:"Suit:1";', "is not Class:Case"),
        (b"r:0;", "reference to value 0 of 0 at byte 0"),
        (b"R:1;", "reference to value 1 of 0 at byte 0"),
        (b"a:1:{i:0;r:5;}", "reference to value 5 of 1 at byte 9"),
        # PHP's unserialize() refuses r: to anything but an object too
        (b"a:2:{i:0;i:5;i:1;r:2;}", "r:2 refers to a value that is not an object at byte 17"),
        (b"a:2:{i:0;a:0:{}i:1;r:2;}", "r:2 refers to a value that is not an object"),
        (b"a:1:{i:0;r:1;}", "r:1 refers to a value that is not an object at byte 9"),
        (b"N;N;", "2 unexpected bytes after the value at byte 2"),
        (b"i:5;junk", "4 unexpected bytes after the value at byte 4"),
    ],
)
def test_malformed_data_is_refused_saying_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(SessionDataError) as caught:
        unserialize(data)
    assert message in str(caught.value)


def test_giant_declared_counts_and_lengths_allocate_nothing() -> None:
    hostile = [
        b"a:999999999999999999:{",
        b"a:100000000:{i:0;N;}",
        b'O:8:"stdClass":4000000000:{}',
        b's:999999999999:"abc";',
        b'C:1:"A":999999999999:{}',
        b'S:999999999999:"abc";',
    ]
    tracemalloc.start()
    try:
        for data in hostile:
            with pytest.raises(SessionDataError, match="at byte"):
                unserialize(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_a_declared_count_larger_than_the_bytes_left_says_so() -> None:
    with pytest.raises(
        SessionDataError,
        match="array declares 100000000 elements but only 9 bytes remain at byte 2",
    ):
        unserialize(b"a:100000000:{i:0;N;}")


def test_nesting_deeper_than_max_depth_is_refused() -> None:
    bomb = b"a:1:{i:0;" * 100_000 + b"N;" + b"}" * 100_000
    with pytest.raises(SessionDataError, match="nested deeper than max_depth=64 at byte 576"):
        unserialize(bomb)
    objects = b'O:8:"stdClass":1:{s:1:"a";' * 10 + b"N;" + b"}" * 10
    assert unserialize(objects, max_depth=10).class_name == "stdClass"
    with pytest.raises(SessionDataError, match="max_depth=9"):
        unserialize(objects, max_depth=9)
    deepest = b"a:1:{i:0;" * MAX_DEPTH_LIMIT + b"N;" + b"}" * MAX_DEPTH_LIMIT
    assert unserialize(deepest, max_depth=MAX_DEPTH_LIMIT) is not None


def test_data_over_max_size_is_refused_before_decoding() -> None:
    with pytest.raises(SessionDataError, match="is 12 bytes, over the limit of 11"):
        unserialize(b's:5:"abcde";', max_size=11)
    assert unserialize(b's:5:"abcde";', max_size=12) == "abcde"


@pytest.mark.parametrize(
    "options", [{"max_depth": 0}, {"max_depth": MAX_DEPTH_LIMIT + 1}, {"max_size": -1}]
)
def test_bad_limits_are_configuration_errors(options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        unserialize(b"N;", **options)


def test_text_is_refused_as_input() -> None:
    with pytest.raises(TypeError, match="must be bytes, not str"):
        unserialize("N;")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_session_data_error(data: bytes) -> None:
    try:
        unserialize(data)
    except SessionDataError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(0, len(PHP_PAYLOAD) - 1), st.integers(0, 255))
def test_a_changed_byte_decodes_or_raises_session_data_error(at: int, byte: int) -> None:
    data = bytearray(PHP_PAYLOAD)
    data[at] = byte
    try:
        unserialize(bytes(data))
    except SessionDataError:
        pass


# -- against PHP: what PHP serializes decodes to what it was -------------

# A value spec is JSON PHP rebuilds (bytes go as base64) and Python
# predicts the decoded value from:
#   ["null"] ["bool", b] ["int", "123"] ["float", "0.1"|"INF"|"-INF"|"NAN"]
#   ["str", b64] ["arr", [[key, spec], ...]] with key ["int", "5"]|["str", b64]
#   ["obj", a, b, c]     new Fx(a, b, c): private $a, protected $b, public $c
#   ["std", [[b64 name, spec], ...]]   a stdClass with those properties
#   ["shared", n]        the n-th shared Fx of this value (PHP writes r:)
#   ["refpair", spec]    [&$x, &$x] with $x = spec (PHP writes R:)
#   ["custom", spec]     a Serializable whose serialize() is serialize(spec)
#   ["enum", "Hearts"|"Spades"]

PHP_REBUILD = r"""<?php
class Fx { private $a; protected $b; public $c;
    function __construct($a, $b, $c) { $this->a = $a; $this->b = $b; $this->c = $c; } }
class Cx implements Serializable { public $d;
    function __construct($d) { $this->d = $d; }
    function serialize() { return serialize($this->d); }
    function unserialize($s) { $this->d = unserialize($s); } }
if (PHP_VERSION_ID >= 80100) {
    eval('enum Suit: string { case Hearts = "H"; case Spades = "S"; }');
}
function build(array $s, array &$shared) {
    switch ($s[0]) {
        case 'null': return null;
        case 'bool': return (bool)$s[1];
        case 'int': return (int)$s[1];
        case 'float':
            return match ($s[1]) { 'INF' => INF, '-INF' => -INF, 'NAN' => NAN, default => (float)$s[1] };
        case 'str': return base64_decode($s[1]);
        case 'arr':
            $a = [];
            foreach ($s[1] as [$k, $v]) {
                $a[$k[0] === 'int' ? (int)$k[1] : base64_decode($k[1])] = build($v, $shared);
            }
            return $a;
        case 'obj': return new Fx(build($s[1], $shared), build($s[2], $shared), build($s[3], $shared));
        case 'std':
            $o = new stdClass;
            foreach ($s[1] as [$k, $v]) { $o->{base64_decode($k)} = build($v, $shared); }
            return $o;
        case 'shared': return $shared[$s[1]] ??= new Fx(null, null, $s[1]);
        case 'refpair': $x = build($s[1], $shared); return [&$x, &$x];
        case 'custom': return new Cx(build($s[1], $shared));
        case 'enum': return constant('Suit::' . $s[1]);
    }
    throw new Exception('bad spec ' . json_encode($s));
}
foreach (json_decode(stream_get_contents(STDIN), true) as $spec) {
    $shared = [];
    echo base64_encode(serialize(build($spec, $shared))), "\n";
}
"""

_INT64 = st.integers(-(2**63), 2**63 - 1)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _float_spec(value: float) -> list[Any]:
    if math.isnan(value):
        return ["float", "NAN"]
    if math.isinf(value):
        return ["float", "INF" if value > 0 else "-INF"]
    return ["float", repr(value)]


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_STRINGS = st.one_of(
    _TEXT.map(lambda text: ["str", _b64(text.encode())]),
    st.binary(max_size=12).map(lambda raw: ["str", _b64(raw)]),
)
_SCALARS = st.one_of(
    st.just(["null"]),
    st.booleans().map(lambda flag: ["bool", flag]),
    _INT64.map(lambda number: ["int", str(number)]),
    st.floats().map(_float_spec),
    st.sampled_from([0.1, -0.0, 0.0, 1e100, 5e-324, 2.5e-300, 1.5]).map(_float_spec),
    _STRINGS,
)
_KEYS = st.one_of(
    st.integers(-3, 5).map(lambda number: ["int", str(number)]),
    _INT64.map(lambda number: ["int", str(number)]),
    _TEXT.map(lambda text: ["str", _b64(text.encode())]),
    st.sampled_from(["0", "1", "2", "-0", "05", "-5", "9223372036854775808"]).map(
        lambda text: ["str", _b64(text.encode())]
    ),
    st.binary(max_size=4).map(lambda raw: ["str", _b64(raw)]),
)
_PROPERTY_NAMES = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\0"), min_size=1, max_size=6
)


def _plain(children: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    return st.one_of(
        st.lists(children, max_size=4).map(
            lambda items: ["arr", [[["int", str(i)], item] for i, item in enumerate(items)]]
        ),
        st.lists(st.tuples(_KEYS, children), max_size=4).map(
            lambda pairs: ["arr", [list(pair) for pair in pairs]]
        ),
    )


_PLAIN = st.recursive(_SCALARS, _plain, max_leaves=6)


def _containers(children: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    return st.one_of(
        _plain(children),
        st.tuples(children, children, children).map(lambda abc: ["obj", *abc]),
        st.lists(st.tuples(_PROPERTY_NAMES, children), max_size=3).map(
            lambda pairs: ["std", [[_b64(name.encode()), spec] for name, spec in pairs]]
        ),
        children.map(lambda spec: ["refpair", spec]),
    )


def _leaves(enums: bool) -> st.SearchStrategy[list[Any]]:
    extra: list[st.SearchStrategy[list[Any]]] = [
        st.integers(0, 2).map(lambda n: ["shared", n]),
        _PLAIN.map(lambda spec: ["custom", spec]),
    ]
    if enums:
        extra.append(st.sampled_from(["Hearts", "Spades"]).map(lambda case: ["enum", case]))
    return st.one_of(_SCALARS, *extra)


def _php_array_key(key: list[Any]) -> Any:
    # Independent of the decoder: PHP stores a canonical decimal string key
    # as an int when it fits 64 bits.
    if key[0] == "int":
        return int(key[1])
    raw = base64.b64decode(key[1])
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return raw
    if text.isascii() and text.lstrip("-").isdigit() and str(int(text)) == text and text != "-0":
        if -(2**63) <= int(text) < 2**63:
            return int(text)
    return text


def _text_or_bytes(raw: bytes) -> Any:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _check(actual: Any, spec: list[Any], shared: dict[int, Any]) -> None:
    kind = spec[0]
    if kind == "null":
        assert actual is None
    elif kind == "bool":
        assert actual is spec[1]
    elif kind == "int":
        assert type(actual) is int and actual == int(spec[1])
    elif kind == "float":
        assert type(actual) is float
        expected = float(spec[1].lower())
        if math.isnan(expected):
            assert math.isnan(actual)
        else:
            assert actual == expected and math.copysign(1, actual) == math.copysign(1, expected)
    elif kind == "str":
        expected = _text_or_bytes(base64.b64decode(spec[1]))
        assert type(actual) is type(expected) and actual == expected
    elif kind == "arr":
        entries: dict[Any, list[Any]] = {}
        for key, child in spec[1]:
            entries[_php_array_key(key)] = child
        if list(entries) == list(range(len(entries))):
            assert isinstance(actual, list) and len(actual) == len(entries)
            for item, child in zip(actual, entries.values(), strict=True):
                _check(item, child, shared)
        else:
            assert isinstance(actual, dict) and list(actual) == list(entries)
            for key, child in entries.items():
                _check(actual[key], child, shared)
    elif kind == "obj":
        assert isinstance(actual, PhpObject) and actual.class_name == "Fx"
        assert list(actual.properties) == ["a", "b", "c"]
        assert actual.visibility == {"a": "private", "b": "protected", "c": "public"}
        assert actual.declared_in == {"a": "Fx"}
        for name, child in zip("abc", spec[1:], strict=True):
            _check(actual.properties[name], child, shared)
    elif kind == "std":
        assert isinstance(actual, PhpObject) and actual.class_name == "stdClass"
        expected_props: dict[str, list[Any]] = {}
        for name, child in spec[1]:
            expected_props[base64.b64decode(name).decode()] = child
        assert list(actual.properties) == list(expected_props)
        for name, child in expected_props.items():
            _check(actual.properties[name], child, shared)
    elif kind == "shared":
        number = spec[1]
        if number in shared:
            assert actual is shared[number]
        else:
            assert actual == PhpObject(
                "Fx",
                {"a": None, "b": None, "c": number},
                {"a": "private", "b": "protected", "c": "public"},
                {"a": "Fx"},
            )
            shared[number] = actual
    elif kind == "refpair":
        assert isinstance(actual, list) and len(actual) == 2
        _check(actual[0], spec[1], shared)
        if isinstance(actual[0], list | dict | PhpObject):
            assert actual[1] is actual[0]
        else:
            _check(actual[1], spec[1], shared)
    elif kind == "custom":
        assert isinstance(actual, PhpCustomObject) and actual.class_name == "Cx"
        _check(unserialize(actual.data), spec[1], {})
    elif kind == "enum":
        assert actual == PhpEnum("Suit", spec[1])
    else:  # pragma: no cover - a typo in a strategy
        raise AssertionError(f"unknown spec {spec!r}")


def _php_has_enums() -> bool:
    require_php()
    return int(run_php("<?php echo PHP_VERSION_ID;").stdout) >= 80100


@pytest.fixture(scope="module")
def values() -> st.SearchStrategy[list[list[Any]]]:
    leaves = _leaves(_php_has_enums())
    return st.lists(st.recursive(leaves, _containers, max_leaves=12), min_size=5, max_size=20)


def test_what_php_serializes_decodes_to_what_it_was(
    values: st.SearchStrategy[list[list[Any]]],
) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        # no shrinking: each try is a php-cli run, so a failure reports the
        # whole batch at once instead of minutes later
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values)
    def check_batch(specs: list[list[Any]]) -> None:
        # One php-cli process serializes the whole batch.
        done = run_php(PHP_REBUILD, stdin=json.dumps(specs).encode())
        lines = done.stdout.split()
        assert len(lines) == len(specs)
        for line, spec in zip(lines, specs, strict=True):
            _check(unserialize(base64.b64decode(line)), spec, {})

    check_batch()


# -- against PHP: what PHP refuses is refused -------------------------------

# A payload of every type php-cli can read back without declared classes
# (no enums, no Serializable, no private names), written by PHP 8.2.
PARITY_PAYLOAD = (
    b'a:7:{s:1:"x";a:2:{i:0;i:1;i:1;i:-2;}s:1:"y";R:2;s:1:"o";O:8:"stdClass":2:'
    b'{s:1:"c";d:-0.5;s:1:"n";N;}s:2:"o2";r:5;s:1:"f";d:1.0E+25;s:1:"b";b:1;'
    b's:1:"s";s:4:"Zo\xc3\xab";}'
)

PHP_ACCEPTS = r"""<?php
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $data) {
    error_clear_last();
    $value = @unserialize(base64_decode($data), ['allowed_classes' => false]);
    $out[] = ($value === false && error_get_last() !== null) ? 0 : 1;
}
echo json_encode($out);
"""

_MUTATION = st.tuples(
    st.sampled_from(["set", "delete", "insert"]),
    st.integers(0, len(PARITY_PAYLOAD) - 1),
    st.sampled_from(list(b'0123456789:;{}"aisdONbrRSCE-+.\0\\xfINAF\xff*xyo')),
)


def _mutate(changes: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(PARITY_PAYLOAD)
    for kind, at, byte in changes:
        at = min(at, len(data) - 1)
        if kind == "set":
            data[at] = byte
        elif kind == "delete":
            del data[at]
        else:
            data.insert(at, byte)
    return bytes(data)


def test_php_and_the_decoder_accept_and_refuse_the_same_changed_payloads() -> None:
    require_php()
    decoded = unserialize(PARITY_PAYLOAD)
    assert decoded["o2"] is decoded["o"] and decoded["y"] is decoded["x"]

    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.lists(_MUTATION, min_size=1, max_size=2), min_size=50, max_size=50))
    def check(batch: list[list[tuple[str, int, int]]]) -> None:
        payloads = [_mutate(changes) for changes in batch]
        request = json.dumps([base64.b64encode(data).decode() for data in payloads]).encode()
        verdicts = json.loads(run_php(PHP_ACCEPTS, stdin=request).stdout)
        for data, php_accepts in zip(payloads, verdicts, strict=True):
            try:
                # PHP 8.2 ignores bytes after the value, as unserialize_prefix does
                unserialize_prefix(data)
                accepted = 1
            except SessionDataError:
                accepted = 0
            assert accepted == php_accepts, data

    check()
