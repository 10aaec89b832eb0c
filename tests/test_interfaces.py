"""Components: Ratchet's interfaces with Python names, and loud failures."""

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import (
    ComponentError,
    EchoServer,
    IoServer,
    MessageComponentInterface,
    WsServer,
)
from ratchetpy.interfaces import check_component


def test_php_style_method_fails_at_class_definition():
    """A subclass defining onMessage is refused, naming on_message."""
    with pytest.raises(ComponentError) as info:

        class Chat(MessageComponentInterface):
            def onMessage(self, conn, msg):
                pass

    assert "onMessage() -> on_message()" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_missing_method_fails_at_instantiation():
    """Leaving out on_error fails when the component is created, as in PHP."""

    class Chat(MessageComponentInterface):
        def on_open(self, conn):
            pass

        def on_message(self, conn, msg):
            pass

        def on_close(self, conn):
            pass

    with pytest.raises(TypeError, match="on_error"):
        Chat()


class DuckChat:
    """A component that does not subclass the interfaces."""

    def on_open(self, conn):
        pass

    def on_message(self, conn, msg):
        pass

    def on_close(self, conn):
        pass

    def on_error(self, conn, exc):
        pass


def test_duck_typed_component_is_accepted():
    """Any object with the four methods can be served."""
    WsServer(DuckChat())
    IoServer(DuckChat(), 0, reactor=MemoryReactorClock())


def test_duck_typed_php_names_fail_when_wrapped():
    """A duck-typed component with onOpen is refused by the layer wrapping it."""

    class PhpChat(DuckChat):
        def onOpen(self, conn):
            pass

    with pytest.raises(ComponentError, match=r"onOpen\(\) -> on_open\(\)"):
        WsServer(PhpChat())


def test_missing_duck_method_is_named():
    """The error names the method the layer needs."""

    class NoClose:
        def on_open(self, conn):
            pass

        def on_message(self, conn, msg):
            pass

        def on_error(self, conn, exc):
            pass

    with pytest.raises(ComponentError, match=r"on_close\(\)"):
        WsServer(NoClose())


def test_check_component_lists_every_missing_method():
    """check_component reports all missing methods at once."""
    with pytest.raises(ComponentError) as info:
        check_component(object(), ("on_open", "on_close"), "Layer")
    assert "on_open()" in str(info.value) and "on_close()" in str(info.value)


def test_ioserver_refuses_http_component_without_httpserver():
    """IoServer(WsServer(app)) is refused with the fix: wrap it in HttpServer."""
    with pytest.raises(ComponentError, match="HttpServer"):
        IoServer(WsServer(EchoServer()), 0, reactor=MemoryReactorClock())
