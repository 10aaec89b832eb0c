"""server.set({...}): Swoole's setting names mapped to ratchetpy's options, or refused with the reason."""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import App, ConfigurationError, WsServer
from ratchetpy.swoole import NOT_APPLICABLE, SETTINGS, Server
from ratchetpy.swoole.settings import Settings, parameters_of


def applied(options, app=(), ws=()):
    settings = Settings()
    settings.update(options, app, ws)
    return settings


def test_direct_mappings():
    s = applied(
        {
            "package_max_length": 2 * 1024 * 1024,
            "websocket_compression": True,
            "ssl_cert_file": "cert.pem",
            "ssl_key_file": "key.pem",
            "max_wait_time": 3,
            "task_worker_num": 4,
            "socket_buffer_size": 65536,
            "websocket_subprotocol": "chat",
            "keepalive": 0,
            "log_connections": 0,
            "allowed_origins": "a.example, *.b.example",
        }
    )
    assert s.max_message_size == 2 * 1024 * 1024 and s.compression == "deflate"
    assert (s.cert, s.key) == ("cert.pem", "key.pem")
    assert s.shutdown_timeout == 3.0 and s.thread_pool_size == 4
    assert s.max_buffered_bytes == 65536 and s.sub_protocol == "chat"
    assert s.keepalive == 0.0 and s.log_connections is False
    assert s.allowed_origins == ["a.example", "*.b.example"]
    assert sorted(s.listen_keys) == ["max_wait_time", "ssl_cert_file", "ssl_key_file"]


def test_pass_through_goes_where_the_option_is_taken():
    """max_conn goes to App first, idle time to WsServer first, each only where the keyword exists."""
    both = {"max_connections", "max_connections_per_ip", "idle_timeout"}
    s = applied({"max_conn": 100, "max_connections_per_ip": 5, "heartbeat_idle_time": 60}, app=both, ws=both)
    assert s.app_options == {"max_connections": 100, "max_connections_per_ip": 5}
    assert s.ws_options == {"idle_timeout": 60.0}
    s = applied({"max_connection": 100, "heartbeat_idle_time": 60}, app={"idle_timeout"}, ws={"max_connections"})
    assert s.app_options == {"idle_timeout": 60.0} and s.ws_options == {"max_connections": 100}


def test_check_interval_alone_sets_an_idle_time_of_twice_it():
    """Swoole's rule: heartbeat_idle_time defaults to 2 x heartbeat_check_interval."""
    s = applied({"heartbeat_check_interval": 30}, ws={"idle_timeout"})
    assert s.ws_options == {"idle_timeout": 60.0}
    s = applied({"heartbeat_check_interval": 30, "heartbeat_idle_time": 45}, ws={"idle_timeout"})
    assert s.ws_options == {"idle_timeout": 45.0}


@pytest.mark.parametrize(
    "options", [{"max_conn": 10}, {"max_connections_per_ip": 2}, {"heartbeat_idle_time": 5}, {"heartbeat_check_interval": 5}]
)
def test_pass_through_without_the_option_is_not_supported_in_this_version(options):
    with pytest.raises(ConfigurationError, match="not supported in this version"):
        applied(options)


def test_max_conn_against_the_installed_app():
    """With this App: passed through if App/WsServer take max_connections, else refused cleanly."""
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock())
    server.on("message", print)
    if "max_connections" in parameters_of(App, WsServer):
        server.set({"max_conn": 10})
        assert server.setting == {"max_conn": 10}
        server.app  # noqa: B018 - builds with the option
    else:
        with pytest.raises(ConfigurationError, match="'max_conn' is not supported in this version"):
            server.set({"max_conn": 10})
        assert server.setting == {}


@pytest.mark.parametrize(("key", "words"), [("worker_num", "one process"), ("daemonize", "twistd"),
                                            ("enable_coroutine", "async def"), ("task_ipc_mode", "thread pool"),
                                            ("open_websocket_ping_frame", "answers pings")])
def test_not_applicable_settings_say_why(key, words):
    assert key in NOT_APPLICABLE
    with pytest.raises(ConfigurationError, match=words) as caught:
        applied({key: 1})
    assert f"{key!r} does not apply" in str(caught.value)


def test_unknown_settings_list_the_supported_ones():
    with pytest.raises(ConfigurationError, match="unknown setting 'max_con'") as caught:
        applied({"max_con": 1})
    assert all(key in str(caught.value) for key in SETTINGS)


@pytest.mark.parametrize(
    "options",
    [
        {"package_max_length": 0},
        {"package_max_length": True},
        {"task_worker_num": "4"},
        {"heartbeat_idle_time": -1},
        {"heartbeat_check_interval": float("nan")},
        {"max_wait_time": 0},
        {"websocket_compression": "yes"},
        {"ssl_cert_file": ""},
        {"websocket_subprotocol": "a, b"},
        {"keepalive": -1},
        {"allowed_origins": []},
        {"ssl_key_file": "key.pem"},
    ],
)
def test_bad_values_are_refused_naming_the_setting(options):
    with pytest.raises(ConfigurationError) as caught:
        applied(options, app={"max_connections"}, ws={"idle_timeout"})
    assert any(repr(key) in str(caught.value) or key in str(caught.value) for key in options)


def test_all_or_nothing():
    server = Server(reactor=MemoryReactorClock())
    with pytest.raises(ConfigurationError):
        server.set({"package_max_length": 10, "worker_num": 4})
    assert server.setting == {} and server._settings.max_message_size is None
    with pytest.raises(ConfigurationError, match="dict of Swoole settings"):
        server.set(["package_max_length", 10])


def test_constructor_settings_and_the_setting_property():
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock(), package_max_length=1000, max_wait_time=2)
    assert server.setting == {"package_max_length": 1000, "max_wait_time": 2}
    server.on("message", print)
    assert server.app.shutdown_timeout == 2.0
    assert server.stats()["start_time"] > 0


def test_ssl_files_serve_tls(tls_files):
    cert, key = tls_files
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock(), ssl_cert_file=cert, ssl_key_file=key)
    server.on("message", print)
    assert isinstance(server.app.servers[0].endpoint, SSL4ServerEndpoint)


def test_missing_ssl_files_fail_when_the_app_is_built(tmp_path):
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock(), ssl_cert_file=str(tmp_path / "none.pem"))
    server.on("message", print)
    with pytest.raises(ConfigurationError, match="none.pem"):
        server.app  # noqa: B018


def test_task_worker_num_sizes_the_thread_pool():
    class Reactor(MemoryReactorClock):
        suggested = None

        def suggestThreadPoolSize(self, size):
            self.suggested = size

    server = Server("127.0.0.1", 0, reactor=Reactor(), task_worker_num=3)
    server.on("message", print)
    server.app  # noqa: B018
    assert server.reactor.suggested == 3


def test_pass_through_reaches_app_and_wsserver(monkeypatch):
    """Once App/WsServer take max_connections/idle_timeout, set() hands them the values."""
    import ratchetpy.swoole.server as swoole_server

    got = {}

    class LimitedApp(App):
        def __init__(self, *args, max_connections=None, **kwargs):
            got["app"] = max_connections
            super().__init__(*args, **kwargs)

    class IdleWsServer(WsServer):
        def __init__(self, component, *, idle_timeout=None, **kwargs):
            got["ws"] = idle_timeout
            super().__init__(component, **kwargs)

    monkeypatch.setattr(swoole_server, "App", LimitedApp)
    monkeypatch.setattr(swoole_server, "WsServer", IdleWsServer)
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock(), max_conn=500, heartbeat_check_interval=15)
    server.on("message", print)
    server.app  # noqa: B018
    assert got == {"app": 500, "ws": 30.0}
