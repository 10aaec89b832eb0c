"""The envelope that crosses Redis: round trips, and refusals of what is not one."""

from __future__ import annotations

import pytest

from ratchetpy.hub.envelope import Envelope, EnvelopeError, Names


def test_round_trip_keeps_the_payload_bytes_as_they_are():
    payload = "héllo\n{not json}".encode()
    env = Envelope("pub", "node1", {"c": "room", "o": 1, "x": ["a", "b"], "r": "7"}, payload)
    back = Envelope.decode(env.encode())
    assert (back.kind, back.node, back.payload) == ("pub", "node1", payload)
    assert back.exclude == frozenset({"a", "b"}) and back.header["r"] == "7"
    assert back.message() == "héllo\n{not json}"
    binary = Envelope.decode(Envelope("push", "n", {"id": "x", "o": 2}, b"\x00\xff").encode())
    assert binary.message() == b"\x00\xff"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"no newline", "no header line"),
        (b"{bad json\n", "not JSON"),
        (b"[1]\n", "not a JSON object"),
        (b'{"k":"zap","n":"x"}\n', "unknown kind"),
        (b'{"k":"pub"}\n', "no sending node"),
        (b'{"k":"pub","n":"x","o":9}\n', "bad opcode"),
        (b'{"k":"pub","n":"x","x":"id"}\n', "exclude is not a list"),
        (b'{"k":"pub","n":"x","c":5}\n', "'c' is not a string"),
        (b"\xff\xfe\n", "not JSON"),
    ],
)
def test_what_is_not_an_envelope_is_refused_clearly(data, problem):
    with pytest.raises(EnvelopeError, match=problem):
        Envelope.decode(data)


def test_text_payload_that_is_not_utf8_is_refused():
    env = Envelope.decode(b'{"k":"pub","n":"x","o":1}\n\xff')
    with pytest.raises(EnvelopeError, match="not UTF-8"):
        env.message()


def test_names_keep_a_channel_in_one_cluster_slot():
    from ratchetpy.redis.slots import hash_slot

    names = Names("app:")
    channel = names.channel("room:1")
    key, exp = names.presence("room:1")
    assert channel == "app:ch:{room:1}"
    assert hash_slot(channel.encode()) == hash_slot(key.encode()) == hash_slot(exp.encode())
    assert names.node("n1") == "app:node:n1"
    assert hash_slot(names.nodes.encode()) == hash_slot(names.node_stats.encode())
