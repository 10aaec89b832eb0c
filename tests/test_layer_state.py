"""
Framework layers keep their per-connection state to themselves.

Before, the Router kept its controller in ``conn.controller``, HttpServer in
``conn._http``, OriginCheck/IpBlackList in flags and WsServer its protocol
in ``conn._ws_protocol``: a component setting one of those names broke the
stack (``on_close`` never ran and a graceful stop never ended). Now no name
a component sets can reach a layer's state, and connection loss reaches the
WebSocket protocol straight from the transport.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import HttpServer, IpBlackList, OriginCheck, Router, WsServer
from ratchetpy.http.interfaces import HttpServerInterface
from ratchetpy.server.io import IoServer
from ratchetpy.testing import RecordingComponent
from tests.support.memory import WsPeer

# Every name a layer kept on the connection before, Ratchet's PHP names for
# them, and ratchetpy's private ones.
NAMES_LAYERS_USED = (
    "controller",
    "WebSocket",
    "WAMP",
    "Session",
    "_http",
    "_origin_refused",
    "_blocked",
    "_ws_protocol",
    "_wamp_connection",
    "_ws",
    "_wrapped",
    "_root",
    "_protocol",
    "_reactor",
    "_closing",
    "_lost_reason",
    "_take_over",
    "_io",
    "_serial",
    "transport",
)


class SetsEverything(RecordingComponent):
    """Sets every name above on open, on the view it gets and on the raw connection."""

    def on_open(self, conn: Any) -> None:
        for name in NAMES_LAYERS_USED:
            setattr(conn, name, "mine")
            setattr(conn.get_connection(), name, "mine")
        super().on_open(conn)


def app_stack(component: Any) -> tuple[Any, WsServer]:
    """The stack App builds: IpBlackList → HttpServer → Router → OriginCheck → WsServer."""
    ws = WsServer(component, log_connections=False)
    router = Router()
    router.add("/", OriginCheck(ws, ["*"]), methods=("GET",))
    return IpBlackList(HttpServer(router)), ws


def test_a_component_setting_every_layer_name_still_gets_on_close() -> None:
    component = SetsEverything(echo=True)
    stack, ws = app_stack(component)
    peer = WsPeer(stack=stack).open()
    assert component.kinds() == ["open"]
    assert peer.send_text("still works")[0].data == b"still works"
    peer.client.send_close(1000, "bye")
    peer.pump()
    assert component.kinds()[-1] == "close"
    assert ws.connections == []


def test_a_component_setting_every_layer_name_does_not_block_a_stop() -> None:
    component = SetsEverything()
    stack, ws = app_stack(component)
    reactor = MemoryReactorClock()
    server = IoServer(stack, 0, reactor=reactor)
    peers = [WsPeer(stack=stack, server=server).open() for _ in range(3)]
    assert server.connection_count == 3
    done: list[int] = []
    server.close_connections(timeout=2).addCallback(done.append)
    for peer in peers[:2]:
        peer.pump()
        peer.pump()  # these two answer the 1001
    assert done == []
    reactor.advance(2)  # the third never does: dropped
    assert done == [1]
    assert component.kinds().count("close") == 3
    assert ws.connections == []


class SwallowsClose(HttpServerInterface):
    """A user's HTTP decorator that forgets to forward on_close."""

    def __init__(self, component: Any) -> None:
        self.component = component

    def on_open(self, conn: Any, request: Any) -> Any:
        return self.component.on_open(conn, request)

    def on_message(self, conn: Any, msg: Any) -> Any:
        return self.component.on_message(conn, msg)

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> Any:
        return self.component.on_error(conn, exc)


def test_websocket_teardown_does_not_depend_on_layers_forwarding_on_close() -> None:
    component = RecordingComponent()
    ws = WsServer(component, log_connections=False)
    peer = WsPeer(stack=HttpServer(SwallowsClose(ws))).open()
    peer.memory.lose()
    assert component.kinds() == ["open", "close"]
    assert component.events[-1][1].close_code == 1006
    assert ws.connections == []


def test_a_raising_on_close_does_not_leave_the_connection_tracked() -> None:
    class RaisesOnClose(RecordingComponent):
        def on_close(self, conn: Any) -> None:
            super().on_close(conn)
            raise RuntimeError("cleanup failed")

    component = RaisesOnClose()
    ws = WsServer(component, log_connections=False)
    peer = WsPeer(stack=HttpServer(ws)).open()
    server = peer.memory.server
    peer.memory.lose()
    assert component.kinds() == ["open", "close", "error"]
    assert ws.connections == [] and server.connection_count == 0


def test_layers_keep_nothing_in_the_bag() -> None:
    component = RecordingComponent()
    stack, _ = app_stack(component)
    peer = WsPeer(stack=stack).open()
    bag = vars(peer.memory.conn)
    assert set(bag) == {"transport", "resource_id", "id", "remote_address", "http_request"}


def test_http_server_forgets_a_connection_once_its_head_is_handed_on() -> None:
    component = RecordingComponent()
    http = HttpServer(WsServer(component, log_connections=False))
    WsPeer(stack=http).open()
    assert len(http._pending) == 0


@pytest.mark.parametrize("name", ["reactor", "closing"])
def test_read_only_names_say_so(name: str) -> None:
    peer = WsPeer(RecordingComponent()).open()
    with pytest.raises(AttributeError):
        setattr(peer.memory.conn, name, "x")


def test_io_server_refuses_an_http_component_without_importing_http() -> None:
    import ratchetpy.server.io as io

    assert "HttpServerInterface" not in vars(io)
    with pytest.raises(TypeError, match="IoServer\\(HttpServer"):
        IoServer(WsServer(RecordingComponent()), 0, reactor=MemoryReactorClock())
