"""ratchetpy.testing: doubles for testing components without a network."""

import pytest

from ratchetpy import ConnectionInterface, EchoServer
from ratchetpy.testing import FakeConnection, RecordingComponent


def test_fake_connection_records_and_closes():
    """FakeConnection records sends until closed, then drops them."""
    conn = FakeConnection(nickname="bob")
    assert isinstance(conn, ConnectionInterface)
    assert conn.nickname == "bob"
    conn.send("a").send(b"b")
    conn.close(4000, "bye")
    conn.send("late")
    assert conn.sent == ["a", b"b"]
    assert (conn.close_code, conn.close_reason, conn.closing) == (4000, "bye", True)


def test_fake_connection_validates_like_the_real_one():
    """Bad types and close codes fail as they would on a real connection."""
    conn = FakeConnection()
    with pytest.raises(TypeError):
        conn.send(1)
    with pytest.raises(ValueError):
        conn.close(1005)


def test_echo_server_with_fakes():
    """EchoServer sends each message back and closes on error."""
    echo, conn = EchoServer(), FakeConnection()
    echo.on_open(conn)
    echo.on_message(conn, "x")
    echo.on_error(conn, RuntimeError())
    assert conn.sent == ["x"] and conn.close_code == 1000


def test_recording_component():
    """RecordingComponent records events in order and can echo or raise."""
    component = RecordingComponent(echo=True)
    conn = FakeConnection()
    component.on_open(conn)
    component.on_message(conn, "m")
    component.on_close(conn)
    assert component.kinds() == ["open", "message", "close"]
    assert component.messages() == ["m"] and conn.sent == ["m"]
    failing = RecordingComponent(raise_on_message=KeyError("k"))
    with pytest.raises(KeyError):
        failing.on_message(conn, "m")
