"""IoServer and IoConnection: raw bytes, errors, services, endpoints."""

import pytest
from twisted.internet.address import IPv6Address
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from ratchetpy import ConfigurationError, IoServer
from ratchetpy.server.io import _host_of
from ratchetpy.testing import RecordingComponent
from tests.support.memory import MemoryConnection


def test_raw_component_gets_bytes():
    """Without HttpServer a component receives each read as bytes."""
    component = RecordingComponent(echo=True)
    memory = MemoryConnection(component)
    memory.feed(b"hello", one_byte_at_a_time=False)
    assert component.messages() == [b"hello"]
    assert memory.take() == b"hello"


def test_send_str_is_utf8_and_dropped_after_close():
    """IoConnection.send encodes str as UTF-8; after close() sends are dropped."""
    memory = MemoryConnection(RecordingComponent())
    conn = memory.conn
    assert conn.send("é") is conn
    assert memory.take() == "é".encode()
    conn.close()
    conn.send("late")
    assert memory.take() == b""
    assert conn.closing


def test_on_close_once_and_errors_routed():
    """on_close fires once; exceptions go to on_error, the connection stays open."""
    component = RecordingComponent(raise_on_message=ValueError("bad"))
    memory = MemoryConnection(component)
    memory.feed(b"x", one_byte_at_a_time=False)
    assert component.kinds() == ["open", "message", "error"]
    assert memory.transport.connected
    memory.lose()
    memory.lose()
    assert component.kinds().count("close") == 1


class BrokenOnError(RecordingComponent):
    def on_error(self, conn, exc):
        raise RuntimeError("on_error is broken too")


def test_on_error_raising_is_logged_and_aborts():
    """If on_error raises, the failure is logged and only that connection is dropped."""
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        component = BrokenOnError(raise_on_message=ValueError("bad"))
        reactor = MemoryReactorClock()
        memory = MemoryConnection(component, reactor)
        other = MemoryConnection(component, reactor)
        memory.feed(b"x", one_byte_at_a_time=False)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert memory.transport.aborted
    assert other.transport.connected
    assert any("log_failure" in e and e["log_failure"].check(RuntimeError) for e in logged)


def test_remote_address_strips_ipv6_brackets():
    """remote_address is the bare host."""
    assert _host_of(IPv6Address("TCP", "::1", 1234)) == "::1"


def test_service_listens_and_stops():
    """As a Twisted service, IoServer listens on start and stops listening on stop."""
    reactor = MemoryReactorClock()
    server = IoServer.factory(RecordingComponent(), 9001, "127.0.0.1", reactor=reactor)
    server.startService()
    port, factory, _, interface = reactor.tcpServers[0]
    assert (port, interface) == (9001, "127.0.0.1")
    assert factory is server.protocol_factory
    assert server.loop is reactor
    server.stopService()
    assert not server.running


def test_endpoint_description():
    """A Twisted endpoint description string is accepted."""
    reactor = MemoryReactorClock()
    server = IoServer(RecordingComponent(), "tcp:9002:interface=127.0.0.1", reactor=reactor)
    server.startService()
    assert reactor.tcpServers[0][0] == 9002


@pytest.mark.parametrize("spec", ["nonsense:1", -1, 70000, True, 1.5])
def test_bad_endpoints_are_refused(spec):
    """Bad ports and descriptions fail at construction with a hint."""
    with pytest.raises(ConfigurationError):
        IoServer(RecordingComponent(), spec, reactor=MemoryReactorClock())


def test_factory_rejects_bad_port():
    """IoServer.factory checks its port."""
    with pytest.raises(ConfigurationError):
        IoServer.factory(RecordingComponent(), 99999, reactor=MemoryReactorClock())
