"""
The blocking client (``ratchetpy.client.sync``) against real servers: a
ratchetpy App run by the test's reactor (the client in a thread), a plain
Autobahn server behind TLS, and ``twistd ratchetpy`` from a test with no
reactor at all.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import threads
from twisted.trial import unittest

from ratchetpy.app import App
from ratchetpy.client import (
    ConnectionClosed,
    HandshakeRefused,
    SubprotocolRefused,
    TlsError,
)
from ratchetpy.client.sync import connect
from ratchetpy.exceptions import ClientUnavailable
from ratchetpy.interfaces import MessageComponentInterface
from ratchetpy.server.echo import EchoServer
from ratchetpy.server.tls import tls_options
from tests.support import autobahn_server
from tests.support.timing import seconds
from tests.support.tls import self_signed


class SubprotocolEcho(EchoServer):
    def get_sub_protocols(self) -> list[str]:
        return ["chat.v1"]


class Closer(MessageComponentInterface):
    """Closes with 4001 "go away" on the first message."""

    def on_open(self, conn: Any) -> None:
        pass

    def on_message(self, conn: Any, msg: Any) -> None:
        conn.close(4001, "go away")

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


class AgainstRatchetpy(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/echo", EchoServer(), ["*"])
        self.app.route("/sub", SubprotocolEcho(), ["*"])
        self.app.route("/closer", Closer(), ["*"])
        self.app.route("/strict", EchoServer(), ["allowed.example"])
        self.app.privilegedStartService()
        self.app.startService()
        self.base = f"ws://127.0.0.1:{self.app.servers[0].port.getHost().port}"
        self.addCleanup(self.app.stopService)

    def test_echo_round_trip_and_iteration(self):
        def scenario() -> list[Any]:
            with connect(f"{self.base}/echo", handshake_timeout=seconds(10)) as ws:
                assert ws.remote_address == "127.0.0.1"
                ws.send("héllo")
                ws.send(b"\x00\x01")
                got = [ws.recv(timeout=seconds(10)), ws.recv(timeout=seconds(10))]
                with pytest.raises(TimeoutError):
                    ws.recv(timeout=0.05)
            assert ws.close_code == 1000
            return got

        d = threads.deferToThread(scenario)
        d.addCallback(self.assertEqual, ["héllo", b"\x00\x01"])
        return d

    def test_subprotocol_negotiated_and_refused(self):
        def scenario() -> None:
            with connect(f"{self.base}/sub", subprotocols=["chat.v1"]) as ws:
                assert ws.sub_protocol == "chat.v1"
            with pytest.raises(SubprotocolRefused) as caught:
                connect(f"{self.base}/sub", subprotocols=["chat.v9"])
            assert caught.value.server_speaks == ("chat.v1",)

        return threads.deferToThread(scenario)

    def test_refusals_carry_the_status(self):
        def scenario() -> None:
            with pytest.raises(HandshakeRefused) as caught:
                connect(f"{self.base}/nowhere")
            assert caught.value.status == 404
            with pytest.raises(HandshakeRefused) as caught:
                connect(f"{self.base}/strict", origin="http://evil.example")
            assert caught.value.status == 403
            with connect(f"{self.base}/strict", origin="http://allowed.example"):
                pass

        return threads.deferToThread(scenario)

    def test_server_close_is_reported_with_its_code(self):
        def scenario() -> None:
            with connect(f"{self.base}/closer") as ws:
                ws.send("x")
                with pytest.raises(ConnectionClosed) as caught:
                    ws.recv(timeout=seconds(10))
                assert (caught.value.code, caught.value.reason) == (4001, "go away")
                with pytest.raises(ConnectionClosed):
                    list(ws)  # not a normal close: iteration raises too

        return threads.deferToThread(scenario)


class TlsAutobahn(unittest.TestCase):
    """A plain Autobahn echo server behind TLS with a certificate for ``host``."""

    timeout = 60
    host = "localhost"

    def setUp(self) -> None:
        from twisted.internet import reactor

        directory = Path(self.mktemp())
        directory.mkdir()
        self.cert, key = self_signed(directory, host=self.host)
        listening = reactor.listenSSL(
            0,
            autobahn_server.echo_factory(reactor),
            tls_options(self.cert, key),
            interface="127.0.0.1",
        )
        self.addCleanup(listening.stopListening)
        self.port = listening.getHost().port



class TlsTrust(TlsAutobahn):
    def test_trusted_and_untrusted(self):
        def scenario() -> None:
            with connect(f"wss://127.0.0.1:{self.port}/", ca_file=self.cert) as ws:
                ws.send("over tls")
                assert ws.recv(timeout=seconds(10)) == "over tls"
            with pytest.raises(TlsError, match="not trusted"):
                connect(f"wss://127.0.0.1:{self.port}/")

        return threads.deferToThread(scenario)



class TlsWrongName(TlsAutobahn):
    host = "other.test"  # the certificate holds other.test and 127.0.0.1, not localhost

    def test_certificate_for_another_name_is_refused(self):
        def scenario() -> None:
            with pytest.raises(TlsError, match="not valid for 'localhost'"):
                connect(f"wss://localhost:{self.port}/", ca_file=self.cert)

        return threads.deferToThread(scenario)


def test_missing_websockets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "websockets", None)
    with pytest.raises(ClientUnavailable, match=r"ratchetpy\[client\]") as caught:
        connect("ws://127.0.0.1:1/")
    assert isinstance(caught.value, ImportError)


@pytest.mark.slow
def test_from_plain_threads_against_twistd(twistd: Any) -> None:
    """No reactor runs in this process: each thread's client needs none."""
    server = twistd("--route", "/echo")
    server.wait_listening()
    url = f"ws://127.0.0.1:{server.port}/echo"
    results: dict[int, Any] = {}

    def talk(n: int) -> None:
        with connect(url) as ws:
            ws.send(f"thread {n}")
            results[n] = ws.recv(timeout=seconds(10))

    workers = [threading.Thread(target=talk, args=(n,)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds(20))
    assert results == {0: "thread 0", 1: "thread 1", 2: "thread 2"}
    with connect(url) as ws:  # and from the test's own thread
        ws.send(b"main")
        assert ws.recv(timeout=seconds(10)) == b"main"
