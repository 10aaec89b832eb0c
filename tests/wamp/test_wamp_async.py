"""
Async WAMP handlers: ``async def`` handlers and handlers returning Deferreds.

``WampServer.on_open/on_message/on_close`` return a Deferred for them, which
the WebSocket layer waits on (see ``ratchetpy._handlers``); failures end up
where a raising synchronous handler's would. Tested by calling ``WampServer``
directly, through ``_handlers.call_handler`` as the WebSocket layer will,
and over the in-memory stack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from ratchetpy import HttpServer, WsServer
from ratchetpy._handlers import Serial, call_handler
from ratchetpy.exceptions import WampError
from ratchetpy.testing import FakeConnection
from ratchetpy.wamp import (
    ServerProtocol,
    WampConnection,
    WampServer,
    WampServerInterface,
)
from tests.support.memory import WsPeer
from tests.support.wamp import close_of, texts


class Fatal(BaseException):
    """Stands for SystemExit/KeyboardInterrupt without stopping pytest."""


class AsyncApp(WampServerInterface):
    """
    Every handler is ``async def`` and waits ``delay`` seconds on ``clock``
    first. Calls are answered with ``conn.call_result`` after the wait;
    URIs ending ``#fail`` raise RuntimeError, ``#wamp`` WampError, ``#fatal``
    a BaseException, ``#early-wamp`` WampError before any await.
    """

    def __init__(self, clock: Clock, delay: float = 1.0) -> None:
        self.clock = clock
        self.delay = delay
        self.log: list[tuple[Any, ...]] = []
        self.errors: list[tuple[Any, Exception]] = []

    async def wait(self) -> None:
        await deferLater(self.clock, self.delay, lambda: None)

    async def on_open(self, conn: Any) -> None:
        await self.wait()
        self.log.append(("open", conn))

    async def on_close(self, conn: Any) -> None:
        await self.wait()
        self.log.append(("close", conn))

    async def on_error(self, conn: Any, exc: Exception) -> None:
        self.errors.append((conn, exc))

    async def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> Any:
        uri = str(topic)
        self.log.append(("call-start", id))
        if uri.endswith("#early-wamp"):
            raise WampError("refused before awaiting")
        await self.wait()
        self.log.append(("call-end", id))
        if uri.endswith("#fail"):
            raise RuntimeError("failed after await")
        if uri.endswith("#wamp"):
            raise WampError("refused after await")
        if uri.endswith("#fatal"):
            raise Fatal()
        conn.call_result(id, params)
        return "not sent: replies go through call_result"

    async def on_subscribe(self, conn: Any, topic: Any) -> None:
        await self.wait()
        self.log.append(("subscribe", topic.id))

    async def on_unsubscribe(self, conn: Any, topic: Any) -> None:
        await self.wait()
        self.log.append(("unsubscribe", topic.id))

    async def on_publish(self, conn: Any, topic: Any, event: Any, exclude: Any, eligible: Any) -> None:
        await self.wait()
        topic.broadcast(event, exclude, eligible)


def opened(app: Any, clock: Clock) -> tuple[WampServer, FakeConnection, WampConnection]:
    server = WampServer(app)
    fake = FakeConnection()
    d = server.on_open(fake)
    if d is not None:
        out = track(d)
        clock.advance(app.delay)
        assert out == [None]
    conn = server.connection(fake)
    assert conn is not None
    return server, fake, conn


def track(d: object) -> list[object]:
    """What the Deferred ``d`` fires with, once it has: ``[]`` while it waits."""
    assert isinstance(d, Deferred)
    out: list[object] = []
    d.addBoth(out.append)
    return out


def sent(fake: FakeConnection) -> list[Any]:
    return [json.loads(m) for m in fake.sent[1:]]  # [0] is WELCOME


def call(server: WampServer, fake: FakeConnection, call_id: str, uri: str = "http://x/add") -> Any:
    return server.on_message(fake, json.dumps([2, call_id, uri, 1, 2]))


# -- results ---------------------------------------------------------------------------


def test_async_on_call_answers_after_its_await() -> None:
    """The Deferred returned by on_message fires when the handler finished; the answer is its call_result."""
    clock = Clock()
    app = AsyncApp(clock)
    server, fake, conn = opened(app, clock)
    out = track(call(server, fake, "c1"))
    assert out == [] and sent(fake) == []
    clock.advance(1)
    assert out == [None]
    assert sent(fake) == [[3, "c1", [1, 2]]]  # the return value is not sent


def test_async_on_open_and_on_close_return_deferreds() -> None:
    clock = Clock()
    app = AsyncApp(clock)
    server = WampServer(app)
    fake = FakeConnection()
    opening = track(server.on_open(fake))
    assert opening == [] and app.log == []
    clock.advance(1)
    conn = server.connection(fake)
    assert opening == [None] and app.log == [("open", conn)]
    closing = track(server.on_close(fake))
    assert closing == []
    clock.advance(1)
    assert closing == [None] and app.log[-1] == ("close", conn)


def test_async_subscribe_publish_unsubscribe() -> None:
    clock = Clock()
    app = AsyncApp(clock)
    server, fake, conn = opened(app, clock)
    for message in ([5, "http://t/"], [7, "http://t/", "hi"], [6, "http://t/"]):
        out = track(server.on_message(fake, json.dumps(message)))
        assert out == []
        clock.advance(1)
        assert out == [None]
    assert ("subscribe", "http://t/") in app.log and ("unsubscribe", "http://t/") in app.log
    assert sent(fake) == [[8, "http://t/", "hi"]]


def test_handlers_returning_deferreds_are_waited_for() -> None:
    """A plain handler returning a Deferred counts as async, like a coroutine."""

    class DeferredApp(AsyncApp):
        def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> Deferred[None]:  # type: ignore[override]
            return deferLater(self.clock, 1, conn.call_result, id, "late").addCallback(lambda _: None)

    clock = Clock()
    server, fake, _ = opened(DeferredApp(clock), clock)
    out = track(call(server, fake, "c1"))
    assert out == []
    clock.advance(1)
    assert out == [None] and sent(fake) == [[3, "c1", "late"]]


def test_sync_handlers_return_nothing() -> None:
    """Plain handlers keep the synchronous path: no Deferred to wait for."""

    class Sync(AsyncApp):
        def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> None:  # type: ignore[override]
            conn.call_result(id, params)

    clock = Clock()
    server, fake, _ = opened(Sync(clock, delay=0), clock)
    assert call(server, fake, "c1") is None
    assert sent(fake) == [[3, "c1", [1, 2]]]


# -- failures ----------------------------------------------------------------------------


def test_async_handler_exception_goes_to_on_error() -> None:
    """An exception after an await reaches on_error with the WampConnection; the connection stays open."""
    clock = Clock()
    app = AsyncApp(clock)
    server, fake, conn = opened(app, clock)
    out = track(call(server, fake, "c1", "http://x/#fail"))
    clock.advance(1)
    assert out == [None]  # handled: nothing left for the WebSocket layer
    [(error_conn, exc)] = app.errors
    assert error_conn is conn and isinstance(exc, RuntimeError)
    assert fake.close_code is None


@pytest.mark.parametrize("uri", ["http://x/#wamp", "http://x/#early-wamp"])
def test_wamp_error_from_async_on_call_closes_1007(uri: str, logged: list[dict[str, Any]]) -> None:
    """WampError raised inside async on_call closes 1007 with a log line, exactly like a sync one."""
    clock = Clock()
    app = AsyncApp(clock)
    server, fake, _ = opened(app, clock)
    out = track(call(server, fake, "c1", uri))
    clock.advance(1)
    assert out == [None]
    assert fake.close_code == 1007 and app.errors == []
    lines = [e for e in logged if "with 1007" in e.get("log_format", "")]
    assert len(lines) == 1 and isinstance(lines[0]["error"], WampError)


def test_wamp_error_from_async_on_open_goes_to_on_error_as_a_sync_one_would() -> None:
    """Outside message handling WampError is an ordinary error, async or not."""

    class OpenRefuses(AsyncApp):
        async def on_open(self, conn: Any) -> None:
            raise WampError("no")

    clock = Clock()
    app = OpenRefuses(clock)
    server = WampServer(app)
    fake = FakeConnection()
    assert track(server.on_open(fake)) == [None]
    assert [type(e) for _, e in app.errors] == [WampError]
    assert app.errors[0][0] is server.connection(fake) and fake.close_code is None


def test_bare_server_protocol_sends_async_wamp_errors_to_on_error() -> None:
    """Without WampServer, a WampError from an async handler is the app's, as a sync one is."""
    clock = Clock()
    app = AsyncApp(clock)
    protocol = ServerProtocol(app)
    fake = FakeConnection()
    protocol.on_open(fake)
    clock.advance(1)
    out = track(protocol.on_message(fake, '[2,"c1","http://x/#wamp"]'))
    clock.advance(1)
    assert out == [None]
    assert [type(e) for _, e in app.errors] == [WampError] and fake.close_code is None


def test_async_on_close_failure_reaches_on_error_with_the_wamp_connection() -> None:
    """The connection is gone from the server when on_close fails; on_error still gets the WampConnection."""

    class CloseFails(AsyncApp):
        async def on_close(self, conn: Any) -> None:
            await self.wait()
            raise RuntimeError("late failure in on_close")

    clock = Clock()
    app = CloseFails(clock)
    server, fake, conn = opened(app, clock)
    out = track(server.on_close(fake))
    assert server.connection(fake) is None
    clock.advance(1)
    assert out == [None]
    [(error_conn, exc)] = app.errors
    assert error_conn is conn and str(exc) == "late failure in on_close"


def test_failing_async_on_error_is_logged_and_closes_1011(logged: list[dict[str, Any]]) -> None:
    """on_error failing is logged and closes 1011; it is not called again for its own failure."""

    class ErrorFails(AsyncApp):
        async def on_error(self, conn: Any, exc: Exception) -> None:
            self.errors.append((conn, exc))
            await self.wait()
            raise RuntimeError("on_error failed too")

    clock = Clock()
    app = ErrorFails(clock)
    server, fake, _ = opened(app, clock)
    out = track(call(server, fake, "c1", "http://x/#fail"))
    clock.advance(1)
    assert out == [] and len(app.errors) == 1  # waiting for on_error
    clock.advance(1)
    assert out == [None]
    assert len(app.errors) == 1 and fake.close_code == 1011
    failures = [e for e in logged if "closing WAMP connection" in e.get("log_format", "")]
    assert len(failures) == 1 and "on_error failed too" in str(failures[0]["log_failure"].value)


def test_sync_on_error_raising_for_an_async_failure_closes_1011() -> None:
    class ErrorRaises(AsyncApp):
        def on_error(self, conn: Any, exc: Exception) -> None:  # type: ignore[override]
            self.errors.append((conn, exc))
            raise RuntimeError("on_error raised")

    clock = Clock()
    app = ErrorRaises(clock)
    server, fake, _ = opened(app, clock)
    out = track(call(server, fake, "c1", "http://x/#fail"))
    clock.advance(1)
    assert out == [None]
    assert len(app.errors) == 1 and fake.close_code == 1011


def test_base_exception_is_passed_on_to_the_websocket_layer() -> None:
    """SystemExit and the like are not on_error's: the returned Deferred fails with them."""
    clock = Clock()
    app = AsyncApp(clock)
    server, fake, _ = opened(app, clock)
    out = track(call(server, fake, "c1", "http://x/#fatal"))
    clock.advance(1)
    assert [type(f) for f in out] == [Failure] and isinstance(out[0], Failure)
    assert out[0].type is Fatal
    assert app.errors == [] and fake.close_code is None


# -- with the WebSocket layer's serialisation -----------------------------------------------


class Host:
    """What the WebSocket layer gives ``call_handler``, around one FakeConnection."""

    def __init__(self, server: WampServer) -> None:
        self.server = server
        self.conn = FakeConnection()
        self._serial: Serial | None = None
        self.errors: list[BaseException] = []

    def _handler_error(self, exc: Exception) -> None:
        self.server.on_error(self.conn, exc)

    def _handler_fatal(self, exc: BaseException) -> None:
        self.errors.append(exc)

    def _pause_reading(self) -> None:
        pass

    def _resume_reading(self) -> None:
        pass


def test_call_handler_keeps_a_connections_async_messages_in_order() -> None:
    """
    Through ``_handlers.call_handler`` (as the WebSocket layer calls components),
    a connection's second call starts only after its first async on_call and
    a slow async on_open have finished.
    """
    clock = Clock()
    app = AsyncApp(clock)
    server = WampServer(app)
    host = Host(server)
    call_handler(host, server.on_open, host.conn)
    call_handler(host, server.on_message, host.conn, '[2,"c1","http://x/add"]')
    call_handler(host, server.on_message, host.conn, '[2,"c2","http://x/#fatal"]')
    call_handler(host, server.on_message, host.conn, '[2,"c3","http://x/add"]')
    assert app.log == []
    clock.advance(1)
    assert [e[0] for e in app.log] == ["open", "call-start"]
    clock.advance(1)
    assert app.log[2:] == [("call-end", "c1"), ("call-start", "c2")]
    clock.advance(1)
    assert [type(e) for e in host.errors] == [Fatal]  # the layer's fatal policy got it
    clock.advance(1)
    assert app.log[-1] == ("call-end", "c3")
    assert sent(host.conn) == [[3, "c1", []], [3, "c3", []]]


# -- over the in-memory stack ------------------------------------------------------------


def test_async_on_call_over_the_stack() -> None:
    """Over HttpServer(WsServer(WampServer)): the answer is written once the Clock fires the await."""
    reactor = MemoryReactorClock()
    app = AsyncApp(reactor)
    stack = HttpServer(WsServer(WampServer(app)))
    peer = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
    peer.pump()
    peer.reactor.advance(1)  # async on_open
    assert peer.send_text('[2,"c1","http://x/add",5]') == []
    peer.reactor.advance(1)
    assert texts(peer.pump()) == ['[3,"c1",[5]]']
    assert peer.send_text('[2,"c2","http://x/#wamp"]') == []
    peer.reactor.advance(1)
    assert close_of(peer.pump()) == (1007, "")
