"""Every public module declares ``__all__``, and every name in it exists."""

import importlib

import pytest

MODULES = [
    "ratchetpy",
    "ratchetpy.interfaces",
    "ratchetpy.connection",
    "ratchetpy.exceptions",
    "ratchetpy.testing",
    "ratchetpy.server",
    "ratchetpy.server.io",
    "ratchetpy.server.connection",
    "ratchetpy.server.echo",
    "ratchetpy.http",
    "ratchetpy.http.request",
    "ratchetpy.http.response",
    "ratchetpy.http.server",
    "ratchetpy.http.interfaces",
    "ratchetpy.websocket",
    "ratchetpy.websocket.server",
    "ratchetpy.websocket.connection",
    "ratchetpy.websocket.handshake",
    "ratchetpy.websocket.frames",
    "ratchetpy.websocket.broadcast",
    "ratchetpy.websocket.flow",
    "ratchetpy.websocket.compression",
    "ratchetpy.websocket.admission",
    "ratchetpy.websocket.idle",
    "ratchetpy.websocket._engine",
    "ratchetpy.websocket._fastpath",
    "ratchetpy.wamp",
    "ratchetpy.wamp.interfaces",
    "ratchetpy.wamp.server",
    "ratchetpy.wamp.protocol",
    "ratchetpy.wamp.connection",
    "ratchetpy.wamp.topic",
    "ratchetpy.app",
    "ratchetpy.wrapping",
    "ratchetpy._appendpoints",
    "ratchetpy._appmetrics",
    "ratchetpy.tap",
    "ratchetpy.targets",
    "ratchetpy._tapchecks",
    "ratchetpy.builtins",
    "ratchetpy.http.router",
    "ratchetpy.hub.metrics",
    "ratchetpy.http.origin",
    "ratchetpy.http.controllers",
    "ratchetpy.server.blacklist",
    "ratchetpy.server.tls",
    "ratchetpy.hub.push_request",
    "ratchetpy.hub.pushapi",
    "ratchetpy.hub.history",
    "ratchetpy.hub.recovery",
    "ratchetpy.hub.channel_history",
    "ratchetpy.hub.redis_history",
    "ratchetpy.hub.hub",
    "ratchetpy.client",
    "ratchetpy.client.options",
    "ratchetpy.client.tls",
    "ratchetpy.client.connection",
    "ratchetpy.client.protocol",
    "ratchetpy.client.connect",
    "ratchetpy.client.reconnecting",
    "ratchetpy.client.sync",
    "ratchetpy.client.cli",
    "ratchetpy.client.phpws",
    "ratchetpy.hub.names",
    "ratchetpy.hub.info",
    "ratchetpy.hub.stats",
    "ratchetpy.hub.envelope",
    "ratchetpy.hub.backplane",
    "ratchetpy.hub.relay",
    "ratchetpy.hub.redis_backplane",
    "ratchetpy.hub.redis_presence",
    "ratchetpy.server.workers",
    "ratchetpy.swoole",
    "ratchetpy.swoole.server",
    "ratchetpy.swoole.connections",
    "ratchetpy.swoole.events",
    "ratchetpy.swoole.http",
    "ratchetpy.swoole.settings",
    "ratchetpy.swoole.timers",
    "ratchetpy.swoole.tasks",
    "ratchetpy.redis",
    "ratchetpy.redis.url",
    "ratchetpy.redis.endpoints",
    "ratchetpy.redis.protocol",
    "ratchetpy.redis.backoff",
    "ratchetpy.redis.stats",
    "ratchetpy.redis.link",
    "ratchetpy.redis.client",
    "ratchetpy.redis.pubsub",
    "ratchetpy.redis.scripts",
    "ratchetpy.redis.slots",
    "ratchetpy.session.serialize",
    "ratchetpy.session.formats",
    "ratchetpy.session.laravel",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    """Each name in a module's __all__ is importable from it."""
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_package_reexports_subpackages():
    """The package root re-exports each subpackage's public names it promises."""
    import ratchetpy

    for sub in ("ratchetpy.server", "ratchetpy.websocket"):
        module = importlib.import_module(sub)
        for n in module.__all__:
            if n in ("HandshakeResult", "negotiate"):
                continue
            assert getattr(ratchetpy, n) is getattr(module, n)


def test_importing_does_not_install_a_reactor():
    """Importing ratchetpy leaves the choice of reactor to the application."""
    import subprocess
    import sys

    code = "import sys, ratchetpy, ratchetpy.testing; print('twisted.internet.reactor' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
