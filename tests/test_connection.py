"""Connections: one object per connection, one attribute bag for all layers."""

from ratchetpy.testing import RecordingComponent
from tests.support.memory import WsPeer


def opened(component):
    peer = WsPeer(component).open()
    kind, conn = component.events[-1]
    assert kind == "open"
    return peer, conn


def test_same_object_for_the_whole_connection():
    """on_open, on_message and on_close all get the identical object."""
    component = RecordingComponent()
    peer, conn = opened(component)
    peer.send_text("x")
    peer.client.send_close(1000)
    peer.pump()
    assert [e[1] for e in component.events] == [conn, conn, conn]
    assert all(e[1] is conn for e in component.events)


def test_user_attributes_are_shared_with_the_raw_connection():
    """An attribute set on the WebSocket view is visible on the raw one, and back."""
    component = RecordingComponent()
    peer, conn = opened(component)
    raw = peer.memory.conn
    conn.nickname = "alice"
    assert raw.nickname == "alice"
    raw.room = "lobby"
    assert conn.room == "lobby"
    del conn.nickname
    assert not hasattr(raw, "nickname")


def test_documented_attributes():
    """resource_id, remote_address and http_request reach the component's view."""
    component = RecordingComponent()
    peer, conn = opened(component)
    assert isinstance(conn.resource_id, int)
    assert conn.resource_id == peer.memory.conn.resource_id
    assert conn.remote_address == "127.0.0.1"
    assert conn.http_request.path == "/"
    assert conn.http_request.headers["upgrade"].lower() == "websocket"


def test_resource_ids_are_unique():
    """Each connection in a process gets its own resource_id."""
    component = RecordingComponent()
    ids = {opened(component)[1].resource_id for _ in range(5)}
    assert len(ids) == 5


def test_private_state_stays_on_the_view():
    """Underscore attributes are not written into the shared bag."""
    component = RecordingComponent()
    peer, conn = opened(component)
    conn._mine = 1
    assert "_mine" not in vars(peer.memory.conn)
