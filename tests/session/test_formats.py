"""
ratchetpy.session.formats: sessions real PHP wrote (``session_start()`` on a
temporary save path, then the ``sess_<id>`` file) under each
``session.serialize_handler``, decoded with the serializer given and
auto-detected; PHP's quirks with odd key names; refusals.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.formats import SERIALIZERS, decode_session, detect_serializer
from ratchetpy.session.serialize import PhpObject
from tests.support.php import require_php, run_php

# Fills $_SESSION as a logged-in PHP site would (with Symfony's attribute
# bag layout too), saves it and prints the session id.
WRITE_SESSION = r"""<?php
class User { private $id = 7; protected $roles = ['admin']; public $name = 'Zoë'; }
session_save_path($argv[1]);
session_start();
$_SESSION['name'] = 'Zoë 😀';
$_SESSION['raw'] = "\xff\x00\xfe";
$_SESSION['count'] = 42;
$_SESSION['ratio'] = 0.1;
$_SESSION['neg_zero'] = -0.0;
$_SESSION['inf'] = INF;
$_SESSION['flags'] = [true, false, null];
$_SESSION['nested'] = ['a' => ['b' => ['c' => 1]], 5 => 'five'];
$user = new User;
$_SESSION['user'] = $user;
$_SESSION['same_user'] = $user;
$list = [1, 2];
$_SESSION['list'] = &$list;
$_SESSION['list_again'] = &$list;
$_SESSION['_sf2_attributes'] = ['_security_main' => 'token', 'user_id' => 9];
$_SESSION['_sf2_meta'] = ['u' => 1700000000, 'c' => 1700000000, 'l' => 0];
$_SESSION['_sf2_flashes'] = [];
$_SESSION['clé|not'] = 'x';
session_write_close();
echo session_id();
"""


def _write(tmp_path: Path, serializer: str, code: str = WRITE_SESSION) -> bytes:
    done = run_php(code, ini={"session.serialize_handler": serializer}, args=[str(tmp_path)])
    session_id = done.stdout.decode()
    return (tmp_path / f"sess_{session_id}").read_bytes()


@pytest.mark.parametrize("serializer", ["php_binary", "php_serialize"])
def test_sessions_php_wrote_decode_with_and_without_the_serializer(
    tmp_path: Path, serializer: str
) -> None:
    require_php()
    data = _write(tmp_path, serializer)
    assert detect_serializer(data) == serializer
    session = decode_session(data, serializer)
    assert decode_session(data) == session
    assert session["name"] == "Zoë 😀"
    assert session["raw"] == b"\xff\x00\xfe"
    assert session["count"] == 42 and session["ratio"] == 0.1
    assert math.copysign(1, session["neg_zero"]) == -1 and session["inf"] == math.inf
    assert session["flags"] == [True, False, None]
    assert session["nested"] == {"a": {"b": {"c": 1}}, 5: "five"}
    user = session["user"]
    assert user == PhpObject(
        "User",
        {"id": 7, "roles": ["admin"], "name": "Zoë"},
        {"id": "private", "roles": "protected", "name": "public"},
        {"id": "User"},
    )
    assert session["same_user"] is user
    assert session["list"] == [1, 2] and session["list_again"] is session["list"]
    assert session["_sf2_attributes"] == {"_security_main": "token", "user_id": 9}
    assert session["_sf2_meta"] == {"u": 1700000000, "c": 1700000000, "l": 0}
    assert session["_sf2_flashes"] == []
    # php_binary and php_serialize can hold a name with "|"
    assert session["clé|not"] == "x"


def test_php_serializer_sessions_php_wrote_decode(tmp_path: Path) -> None:
    require_php()
    # PHP's default serializer cannot store a name with "|": drop that one
    data = _write(tmp_path, "php", WRITE_SESSION.replace("$_SESSION['clé|not'] = 'x';", ""))
    assert detect_serializer(data) == "php"
    session = decode_session(data, "php")
    assert decode_session(data) == session
    assert list(session) == [
        "name",
        "raw",
        "count",
        "ratio",
        "neg_zero",
        "inf",
        "flags",
        "nested",
        "user",
        "same_user",
        "list",
        "list_again",
        "_sf2_attributes",
        "_sf2_meta",
        "_sf2_flashes",
    ]
    assert session["name"] == "Zoë 😀" and session["raw"] == b"\xff\x00\xfe"
    # references across keys: same_user is r:9 and list_again R:11 of one
    # numbering shared by all keys
    assert session["same_user"] is session["user"]
    assert session["list_again"] is session["list"]
    assert session["user"].properties == {"id": 7, "roles": ["admin"], "name": "Zoë"}


def test_a_name_with_a_bar_makes_php_write_an_empty_session(tmp_path: Path) -> None:
    require_php()
    data = _write(tmp_path, "php")
    assert data == b""
    assert decode_session(data) == {} and decode_session(data, "php") == {}


def test_integer_keys_of_php_serialize_become_strings(tmp_path: Path) -> None:
    require_php()
    code = r"""<?php
    session_save_path($argv[1]); session_start();
    $_SESSION[5] = 'five'; $_SESSION['6'] = 'six'; $_SESSION['x'] = [3 => 'three'];
    session_write_close(); echo session_id();
    """
    data = _write(tmp_path, "php_serialize", code)
    assert data == b'a:3:{i:5;s:4:"five";i:6;s:3:"six";s:1:"x";a:1:{i:3;s:5:"three";}}'
    assert decode_session(data) == {"5": "five", "6": "six", "x": {3: "three"}}
    # php and php_binary skip integer keys, as PHP says in a warning
    for serializer in ("php", "php_binary"):
        assert decode_session(_write(tmp_path, serializer, code)) == {"x": {3: "three"}}


def test_php_binary_skips_names_over_127_bytes(tmp_path: Path) -> None:
    require_php()
    code = r"""<?php
    session_save_path($argv[1]); session_start();
    $_SESSION[str_repeat('k', 127)] = 1; $_SESSION[str_repeat('l', 128)] = 2;
    session_write_close(); echo session_id();
    """
    assert decode_session(_write(tmp_path, "php_binary", code), "php_binary") == {"k" * 127: 1}
    assert decode_session(_write(tmp_path, "php", code), "php") == {"k" * 127: 1, "l" * 128: 2}


# -- hand-made data ---------------------------------------------------------


def test_empty_data_is_an_empty_session() -> None:
    for serializer in (None, *SERIALIZERS):
        assert decode_session(b"", serializer) == {}
    assert detect_serializer(b"") == "php"


def test_unknown_serializer_names_the_valid_ones() -> None:
    with pytest.raises(
        ConfigurationError, match="'json': use one of php, php_binary, php_serialize"
    ):
        decode_session(b"a|i:1;", "json")
    with pytest.raises(ConfigurationError):
        decode_session(b"", "PHP")


def test_php_format_names_end_at_the_first_bar() -> None:
    assert decode_session(b'a|s:3:"x|y";b|i:2;', "php") == {"a": "x|y", "b": 2}
    # PHP 7+ has no "!name|" marker for unset keys: "!" is part of the name
    assert decode_session(b"!gone|N;", "php") == {"!gone": None}
    assert decode_session(b"|i:1;", "php") == {"": 1}


def test_php_binary_ignores_the_length_bytes_high_bit_as_php_8_does() -> None:
    assert decode_session(b"\x81ai:1;", "php_binary") == {"a": 1}


@pytest.mark.parametrize(
    ("data", "serializer", "message"),
    [
        (b"name", "php", "php session: no '|' after the key name at byte 0"),
        (b"a|i:1;b", "php", "no '|' after the key name at byte 6"),
        (b"a|i:1", "php", "truncated, expected ';' at byte 5"),
        (b"a|x", "php", "unknown type b'x' at byte 2"),
        (b"\x05ab", "php_binary", "key length 5 at byte 0 runs past the end"),
        (b"\x01ai:1", "php_binary", "expected ';' at byte 5"),
        (b"i:5;", "php_serialize", "expected an array, got int"),
        (b"a:0:{}x", "php_serialize", "1 unexpected bytes after the array at byte 6"),
    ],
)
def test_malformed_sessions_are_refused(data: bytes, serializer: str, message: str) -> None:
    with pytest.raises(SessionDataError) as caught:
        decode_session(data, serializer)
    assert message in str(caught.value)


def test_names_that_are_not_utf8_keep_their_bytes() -> None:
    for data, serializer in [
        (b"\xff|i:1;ok|i:2;", "php"),
        (b"\x01\xffi:1;\x02oki:2;", "php_binary"),
        (b'a:2:{s:1:"\xff";i:1;s:2:"ok";i:2;}', "php_serialize"),
    ]:
        session = decode_session(data, serializer)
        assert session == {"\udcff": 1, "ok": 2}
        assert next(iter(session)).encode("utf-8", "surrogateescape") == b"\xff"
        assert decode_session(data) == session


def test_undecodable_data_says_why_for_each_serializer() -> None:
    with pytest.raises(SessionDataError) as caught:
        decode_session(b"garbage")
    message = str(caught.value)
    assert message.startswith("session data is in none of PHP's session formats")
    assert "php: php session: no '|'" in message and "php_binary:" in message
    with pytest.raises(SessionDataError, match="php_serialize: "):
        detect_serializer(b"a:1:{")


def test_igbinary_and_msgpack_sessions_say_which_setting_to_change() -> None:
    # what php-cli 8.2 wrote for {"name": "x", "n": [1]} with the igbinary
    # and msgpack extensions' session.serialize_handler
    igbinary = b"\0\0\0\x02\x14\x02\x11\x04name\x11\x01x\x11\x01n\x14\x01\x06\0\x06\x01"
    msgpack = b"\x83\xc0\x01\xa4name\xa1x\xa1n\x91\x01"
    with pytest.raises(
        SessionDataError, match="looks like igbinary .* set session.serialize_handler"
    ):
        decode_session(igbinary)
    with pytest.raises(SessionDataError, match="may be msgpack .* to php_serialize"):
        detect_serializer(msgpack)


def test_a_php_session_with_a_key_named_like_an_array_is_still_php() -> None:
    assert detect_serializer(b"a:1|i:1;") == "php"
    assert decode_session(b"a:1|i:1;") == {"a:1": 1}


def test_oversized_session_data_is_refused() -> None:
    with pytest.raises(SessionDataError, match="over the limit"):
        decode_session(b"a|" + b"N;" * (8 * 1024 * 1024 + 1))


def test_nesting_limit_applies() -> None:
    data = b"a|" + b"a:1:{i:0;" * 5 + b"N;" + b"}" * 5
    assert decode_session(data, max_depth=5) == {"a": [[[[[None]]]]]}
    with pytest.raises(SessionDataError, match="max_depth=4"):
        decode_session(data, "php", max_depth=4)


# -- against PHP: auto-detection is right for whatever names PHP writes -------

ENCODE_ALL = r"""<?php
session_save_path($argv[1]);
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $names) {
    foreach (['php', 'php_binary', 'php_serialize'] as $handler) {
        ini_set('session.serialize_handler', $handler);
        session_start();
        $_SESSION = [];
        foreach ($names as $i => $name) { $_SESSION[base64_decode($name)] = $i; }
        $out[] = base64_encode(session_encode());
        session_destroy();
    }
}
echo implode("\n", $out), "\n";
"""


def _is_php_int(name: bytes) -> bool:
    text = name.decode("latin-1")
    return text == str(int(text)) if text.lstrip("-").isdigit() and text.isascii() else False


def _kept(names: list[bytes], serializer: str) -> dict[str, int]:
    """The session PHP keeps of ``{name: index}`` under ``serializer``."""
    php_array: dict[Any, int] = {}
    for index, name in enumerate(names):
        key: Any = int(name) if _is_php_int(name) and -(2**63) <= int(name) < 2**63 else name
        php_array[key] = index
    if serializer == "php_serialize":
        return {
            str(key) if isinstance(key, int) else key.decode("utf-8", "surrogateescape"): value
            for key, value in php_array.items()
        }
    if serializer == "php" and any(b"|" in key for key in php_array if isinstance(key, bytes)):
        return {}
    return {
        key.decode("utf-8", "surrogateescape"): value
        for key, value in php_array.items()
        if isinstance(key, bytes) and (serializer == "php" or len(key) <= 127)
    }


# Names starting with a control character are left out: a php session
# "\x01|i:0;" is also the php_binary session {"|": 0}, and detection takes
# php_binary there (see ratchetpy.session.formats).
_NAMES = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=10).map(str.encode),
        st.sampled_from(["a:1", "a:1:{", "5", "-3", "05", "|", "a|b", "x" * 130, "é", "x\x01"]).map(
            str.encode
        ),
        st.binary(max_size=8),
    ).filter(lambda name: not name or name[0] >= 0x20),
    max_size=6,
)


def test_auto_detection_is_right_for_sessions_php_encodes(tmp_path: Path) -> None:
    require_php()

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(_NAMES, min_size=1, max_size=8))
    def check(batches: list[list[bytes]]) -> None:
        # One php-cli process encodes every batch under the three serializers.
        request = [[base64.b64encode(name).decode() for name in names] for names in batches]
        lines = run_php(ENCODE_ALL, args=[str(tmp_path)], stdin=json.dumps(request).encode())
        encoded = lines.stdout.split(b"\n")[:-1]
        assert len(encoded) == 3 * len(batches)
        for index, names in enumerate(batches):
            for offset, serializer in enumerate(SERIALIZERS):
                data = base64.b64decode(encoded[3 * index + offset])
                expected = _kept(names, serializer)
                assert decode_session(data, serializer) == expected
                assert decode_session(data) == expected
                if data:
                    assert detect_serializer(data) == serializer

    check()


def test_a_php_binary_session_with_a_bar_in_a_key_is_detected() -> None:
    # {"a": 1, "b|": 2} under php_binary also reads, as php, as one key
    # "\x01ai:1;\x02b" holding 2: the reading with more keys wins
    data = b"\x01ai:1;\x02b|i:2;"
    assert decode_session(data, "php") == {"\x01ai:1;\x02b": 2}
    assert detect_serializer(data) == "php_binary"
    assert decode_session(data) == {"a": 1, "b|": 2}
    # a tie goes to php_binary when the first byte is a name length under 32
    assert detect_serializer(b"\x02x|i:1;") == "php_binary"
    assert detect_serializer(b"yx|i:1;") == "php"


# -- against PHP: what session_decode() refuses is refused -------------------

# What php-cli 8.2's session_encode() wrote for
# ['name' => 'Zoë', 'o' => $o, 'o2' => $o, 'n' => [1, 2.5, null, true]].
PARITY_SESSIONS = {
    "php": b'name|s:4:"Zo\xc3\xab";o|O:8:"stdClass":1:{s:1:"a";i:1;}o2|r:2;'
    b"n|a:4:{i:0;i:1;i:1;d:2.5;i:2;N;i:3;b:1;}",
    "php_binary": b'\x04names:4:"Zo\xc3\xab";\x01oO:8:"stdClass":1:{s:1:"a";i:1;}'
    b"\x02o2r:2;\x01na:4:{i:0;i:1;i:1;d:2.5;i:2;N;i:3;b:1;}",
}

PHP_SESSION_DECODE = r"""<?php
session_save_path($argv[1]);
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $handler => $batch) {
    ini_set('session.serialize_handler', $handler);
    session_start();
    foreach ($batch as $data) {
        $ok = @session_decode(base64_decode($data));
        $out[] = $ok ? 1 : 0;
        if (!$ok) { @session_start(); }  // a failed decode destroys the session
    }
    session_destroy();
}
echo json_encode($out);
"""

_CHANGE = st.tuples(
    st.sampled_from(["set", "delete", "insert"]),
    st.integers(0, 200),
    st.sampled_from(list(b'0123456789:;{}"|aisdONbrR-+.E\0\x01\x02\x05\xffnoa')),
)


def _changed(data: bytes, changes: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, at, byte in changes:
        at = at % len(out)
        if kind == "set":
            out[at] = byte
        elif kind == "delete":
            del out[at]
        else:
            out.insert(at, byte)
    return bytes(out)


def test_php_and_the_decoder_accept_and_refuse_the_same_changed_sessions(tmp_path: Path) -> None:
    require_php()
    for serializer, data in PARITY_SESSIONS.items():
        session = decode_session(data, serializer)
        assert session["o2"] is session["o"] and session["name"] == "Zoë"

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.lists(_CHANGE, min_size=1, max_size=2), min_size=40, max_size=40))
    def check(batch: list[list[tuple[str, int, int]]]) -> None:
        changed = {
            serializer: [_changed(data, changes) for changes in batch]
            for serializer, data in PARITY_SESSIONS.items()
        }
        request = {
            serializer: [base64.b64encode(item).decode() for item in items]
            for serializer, items in changed.items()
        }
        done = run_php(PHP_SESSION_DECODE, args=[str(tmp_path)], stdin=json.dumps(request).encode())
        verdicts = iter(json.loads(done.stdout))
        for serializer, items in changed.items():
            for item in items:
                try:
                    decode_session(item, serializer)
                    accepted = 1
                except SessionDataError:
                    accepted = 0
                assert accepted == next(verdicts), (serializer, item)

    check()
