"""
Non-finite numbers (``1e999``, ``-1e999``, ``NaN``, ``Infinity``) are refused
on input with close 1007 and a log line: accepted, they decode to infinity,
and then no reply carrying them can be encoded (a CALL went unanswered, a
PUBLISH was dropped). In memory, and once over a real loopback socket with
the ``websockets`` client.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet import threads
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ratchetpy.exceptions import JsonError
from ratchetpy.wamp import WampServer
from ratchetpy.wamp._json import decode
from tests.support.wamp import LoopbackMixin, WampEcho, close_of, open_peer, texts
from tests.support.wamp_client import WampClient

NON_FINITE = [
    '[2,"c","u",1e999]',
    '[2,"c","u",-1e999]',
    '[2,"c","u",1E400]',
    '[2,"c","u",{"a":[0.5,1e999]}]',
    '[7,"t",1e999]',
    '[7,"t",{"x":-1e999}]',
    '[2,"c","u",Infinity]',
    '[2,"c","u",-Infinity]',
    '[2,"c","u",NaN]',
    '[2,1e999,"u"]',
]


@pytest.mark.parametrize("message", NON_FINITE)
def test_decode_refuses_non_finite_numbers(message: str) -> None:
    with pytest.raises(JsonError):
        decode(message)


def test_decode_keeps_finite_extremes() -> None:
    """Large, tiny and underflowing numbers are finite and kept."""
    assert decode("[1.7976931348623157e308,-1e308,5e-324,1e-999,10000000000000000000000]") == [
        1.7976931348623157e308,
        -1e308,
        5e-324,
        0.0,
        10**22,
    ]


def test_decode_error_names_the_number() -> None:
    with pytest.raises(JsonError, match="1e999 is not a finite number"):
        decode('[2,"c","u",1e999]')


@pytest.mark.parametrize("message", NON_FINITE)
def test_non_finite_number_closes_1007_before_the_app(message: str) -> None:
    """Nothing reaches the app; the connection is closed with 1007."""
    app = WampEcho()
    peer, _ = open_peer(app)
    assert close_of(peer.send_text(message)) == (1007, "")
    assert app.calls == [] and app.errors == []


def test_non_finite_close_is_logged() -> None:
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        peer, _ = open_peer()
        close_of(peer.send_text('[2,"c","u",1e999]'))
    finally:
        globalLogPublisher.removeObserver(logged.append)
    lines = [e for e in logged if "1007" in e.get("log_format", "")]
    assert len(lines) == 1 and "not a finite number" in str(lines[0]["error"])


def test_finite_numbers_still_round_trip() -> None:
    peer, _ = open_peer()
    reply = texts(peer.send_text('[2,"c","u",1e308,-2.5]'))
    assert [json.loads(m) for m in reply] == [[3, "c", [1e308, -2.5]]]


def exchange_over_loopback(url: str) -> tuple[Any, Any, Any]:
    with WampClient(url) as bad:
        bad.send('[2,"c1","http://example.com/add",1e999]')
        refused_call = bad.expect_close()
    with WampClient(url) as bad:
        bad.send('[7,"http://example.com/t",-1e999]')
        refused_publish = bad.expect_close()
    with WampClient(url) as good:
        answer = good.call("c2", "http://example.com/add", 1.5)
    return refused_call, refused_publish, answer


class NonFiniteLoopbackTests(LoopbackMixin, unittest.TestCase):
    timeout = 30

    async def test_non_finite_over_a_real_socket(self) -> None:
        """A real client sending 1e999 in a CALL or PUBLISH gets close 1007; others are answered."""
        app = WampEcho()
        url = await self.serve(WampServer(app))
        refused_call, refused_publish, answer = await threads.deferToThread(exchange_over_loopback, url)
        self.assertEqual(refused_call, (1007, ""))
        self.assertEqual(refused_publish, (1007, ""))
        self.assertEqual(answer, [3, "c2", [1.5]])
        self.assertEqual([c[0] for c in app.calls], ["c2"])
