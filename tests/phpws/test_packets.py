"""phpWebSocketServer's packets: PHP's json_encode and what counts as a packet."""

from __future__ import annotations

import pytest

from ratchetpy.exceptions import PhpWsPacketError, RatchetError
from ratchetpy.phpws.packets import close_packet, decode_packet, php_json_encode, ready_packet


@pytest.mark.parametrize(
    ("value", "php"),
    [
        ({"message": "f\u00fcr / \"q\""}, '{"message":"f\\u00fcr \\/ \\"q\\""}'),
        ({"n": 1.50, "i": 7, "t": True, "z": None, "o": {}, "a": []}, '{"n":1.5,"i":7,"t":true,"z":null,"o":{},"a":[]}'),
        ({"b": 1, "a": 2}, '{"b":1,"a":2}'),  # key order kept
        ("\u2713\n", '"\\u2713\\n"'),
    ],
)
def test_php_json_encode_matches_php_default_flags(value, php):
    assert php_json_encode(value) == php


def test_fixed_packets():
    assert close_packet() == '{"opcode":"close"}'
    assert close_packet("Too many connections") == '{"opcode":"close","error":"Too many connections"}'
    assert ready_packet("a.1.b") == '{"opcode":"ready","uuid":"a.1.b"}'


def test_any_json_value_is_a_packet_binary_too():
    assert decode_packet("[1,2]") == [1, 2]
    assert decode_packet(b'{"opcode":"echo"}') == {"opcode": "echo"}


@pytest.mark.parametrize("message", ["", "  \n", "{not json", "NaN", '{"n": Infinity}', b"\xff", "[" * 100000])
def test_what_is_not_a_packet(message):
    with pytest.raises(PhpWsPacketError) as caught:
        decode_packet(message)
    assert isinstance(caught.value, RatchetError) and isinstance(caught.value, ValueError)
