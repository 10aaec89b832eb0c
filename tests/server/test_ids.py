"""Connection ids: unique across processes, unguessable, stable, on every connection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.server import ids
from ratchetpy.server.ids import is_connection_id, new_connection_id, node_id, node_of
from ratchetpy.testing import FakeConnection, RecordingComponent
from tests.support.memory import MemoryConnection, WsPeer


def test_ids_have_the_node_a_counter_and_96_random_bits() -> None:
    first, second = new_connection_id(), new_connection_id()
    node, counter, secret = first.split(".")
    assert node == node_id() and node_of(first) == node
    assert int(second.split(".")[1], 16) == int(counter, 16) + 1
    assert len(secret) == 16  # 12 bytes, URL-safe base64
    assert is_connection_id(first) and first != second


def test_ids_do_not_repeat_and_their_secrets_are_not_sequential() -> None:
    many = [new_connection_id() for _ in range(20_000)]
    assert len(set(many)) == len(many)
    secrets_ = [i.split(".")[2] for i in many]
    assert len(set(secrets_)) == len(secrets_)


def test_each_process_draws_its_own_node() -> None:
    code = "from ratchetpy.server.ids import new_connection_id; print(new_connection_id())"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        for _ in range(2)
    }
    assert len({node_of(i) for i in runs}) == 2


def test_a_configured_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_node", None)
    ids.set_node_id("web-1")
    assert node_of(new_connection_id()) == "web-1"
    for bad in ("", "a.b", "x" * 65, "sp ace", 7):
        with pytest.raises(ConfigurationError):
            ids.set_node_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "abc", "a.1.short", "a.zz.AAAAAAAAAAAAAAAA", None, 3])
def test_things_that_are_not_ids(value: object) -> None:
    assert not is_connection_id(value)
    if isinstance(value, str):
        assert node_of(value) is None


def test_raw_and_websocket_connections_have_one_stable_id() -> None:
    raw = MemoryConnection(RecordingComponent())
    assert is_connection_id(raw.conn.id)
    component = RecordingComponent(echo=True)
    peer = WsPeer(component).open()
    view = component.events[0][1]
    assert view.id == peer.memory.conn.id and is_connection_id(view.id)
    peer.send_text("x")
    assert component.events[-1][1].id == view.id
    assert view.resource_id == peer.memory.conn.resource_id  # Ratchet's int stays


def test_test_doubles_have_ids_too() -> None:
    assert is_connection_id(FakeConnection().id)
