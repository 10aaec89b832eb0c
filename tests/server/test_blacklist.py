"""IpBlackList: block, unblock, list, CIDR ranges."""

from __future__ import annotations

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.server.blacklist import IpBlackList
from ratchetpy.testing import FakeConnection, RecordingComponent
from tests.support.memory import MemoryConnection


def test_block_unblock_and_list_chain():
    """block/unblock return the blacklist and the list keeps the entries as given."""
    blacklist = IpBlackList(RecordingComponent())
    assert blacklist.block_address("192.0.2.7").block_address("10.0.0.0/8") is blacklist
    assert blacklist.get_blocked_addresses() == ["192.0.2.7", "10.0.0.0/8"]
    blacklist.unblock_address("192.0.2.7")
    assert blacklist.get_blocked_addresses() == ["10.0.0.0/8"]
    assert not blacklist.is_blocked("192.0.2.7")


@pytest.mark.parametrize(
    "entry, address, blocked",
    [
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.0.2.7", "192.0.2.7:4000", True),  # Ratchet's filterAddress strips the port
        ("2001:db8::/32", "2001:db8::1", True),
        ("10.0.0.0/8", "::ffff:10.0.0.5", True),  # IPv4-mapped IPv6
        ("10.0.0.0/8", "unix:/tmp/sock", False),
    ],
)
def test_is_blocked(entry, address, blocked):
    """Addresses inside blocked ranges are blocked."""
    assert IpBlackList(RecordingComponent()).block_address(entry).is_blocked(address) is blocked


def test_bad_entry_is_refused_with_an_example():
    """A malformed entry raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="not-an-ip"):
        IpBlackList(RecordingComponent()).block_address("not-an-ip")


def test_blocked_connection_is_closed_and_never_reaches_the_component():
    """A blocked peer is closed; the component sees no event for it."""
    app = RecordingComponent()
    blacklist = IpBlackList(app).block_address("127.0.0.0/8")
    memory = MemoryConnection(blacklist)
    memory.feed(b"hello")
    assert memory.transport.disconnecting or not memory.transport.connected
    memory.lose()
    assert app.kinds() == []


def test_allowed_connection_passes_through():
    """Other peers reach the component as usual."""
    app = RecordingComponent()
    blacklist = IpBlackList(app).block_address("10.0.0.0/8")
    conn = FakeConnection("192.0.2.1")
    blacklist.on_open(conn)
    blacklist.on_message(conn, b"x")
    blacklist.on_close(conn)
    assert app.kinds() == ["open", "message", "close"]
