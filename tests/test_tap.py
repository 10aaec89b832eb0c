"""twistd ratchetpy: option parsing, --config, and makeService with a MemoryReactor."""

from __future__ import annotations

import sys
import textwrap

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactor
from twisted.plugin import IPlugin, getPlugins
from zope.interface.verify import verifyObject

from ratchetpy import EchoServer, WsServer
from ratchetpy.builtins import Chat
from ratchetpy.http.controllers import StaticResponse
from ratchetpy.http.origin import OriginCheck
from ratchetpy.tap import DEFAULT_LISTEN, Options, makeService
from tests.support.memory import http_exchange
from tests.support.paths import EXAMPLES
from tests.support.tap import error, parse
from tests.support.wire import handshake_request


def test_plugin_is_discovered():
    """getPlugins finds one 'ratchetpy' IServiceMaker pointing at ratchetpy.tap."""
    found = [p for p in getPlugins(IServiceMaker) if p.tapname == "ratchetpy"]
    assert len(found) == 1
    verifyObject(IServiceMaker, found[0])
    verifyObject(IPlugin, found[0])
    assert found[0].options is Options


def test_defaults():
    """--route /chat alone: the built-in chat, demo page at /, loopback 8080."""
    options = parse("--route", "/chat")
    assert options["listen"] == [DEFAULT_LISTEN]
    assert options["keepalive"] == 30 and options["shutdown-timeout"] == 10
    assert options["max-message-size"] == 1024 * 1024
    assert options["http-host"] == "*"
    (path, chat), (root, page) = options["route_components"]
    assert (path, root) == ("/chat", "/")
    assert isinstance(chat, Chat) and isinstance(page, StaticResponse)
    assert b'"/chat"' in page.body


def test_bare_builtin_routes():
    """``--route /echo`` serves the built-in echo; no demo page without a chat."""
    options = parse("--route", "/echo", "--route", "/rooms/chat")
    components = dict(options["route_components"])
    assert isinstance(components["/echo"], EchoServer)
    assert isinstance(components["/rooms/chat"], Chat)
    assert "/" in components  # demo page for the chat at /rooms/chat
    assert b'"/rooms/chat"' in components["/"].body


def test_demo_page_for_a_chat_with_rooms():
    """``--route /room/{name}=chat``: the page at / joins /room/<room>, 'lobby' first."""
    options = parse("--route", "/room/{name}=chat")
    components = dict(options["route_components"])
    assert isinstance(components["/room/{name}"], Chat)
    assert options["demo"] == "/room/{name}"
    assert b'{"prefix": "/room/", "suffix": "", "room": "lobby"}' in components["/"].body


@pytest.mark.parametrize(
    ("routes", "demo"),
    [
        (["/r/{a}/{b}=chat"], None),  # two parameters: the page cannot fill them
        (["/r/{id<\\d+>}=chat"], None),  # 'lobby' does not meet the requirement
        (["/r/{id<\\d+>}=chat", "/chat"], "/chat"),  # the first chat the page can use
        (["/echo", "/room/{name}=chat", "/chat"], "/room/{name}"),
        (["/chat=examples.chat:Chat"], None),  # not the built-in: no page
    ],
)
def test_demo_page_route_choice(routes, demo):
    """The page goes with the first built-in chat route it can connect to, if any."""
    args = [arg for route in routes for arg in ("--route", route)]
    options = parse(*args)
    paths = [p for p, _ in options["route_components"]]
    assert ("/" in paths) is (demo is not None)
    assert options.get("demo") == demo


def test_demo_page_and_rooms_in_service():
    """makeService: / is the page for the rooms route, and /room/lobby is the chat's handshake."""
    service = makeService(parse("--route", "/room/{name}=chat"), reactor=MemoryReactor())
    router = service.router
    assert http_exchange(router, handshake_request("/room/lobby"))[0].startswith(b"HTTP/1.1 101 ")
    page, _ = http_exchange(router, b"GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 OK") and b'"prefix": "/room/"' in page


def test_no_demo_flag():
    """--no-demo leaves / unrouted."""
    options = parse("--route", "/chat", "--no-demo")
    assert [p for p, _ in options["route_components"]] == ["/chat"]


@pytest.mark.parametrize(
    "target",
    ["examples.chat:Chat", "tests.support.tap_targets:make_chat", "tests.support.tap_targets:INSTANCE"],
)
def test_module_targets(target, monkeypatch):
    """A class, a factory, or an instance can be routed by module:name."""
    options = parse("--route", f"/x={target}")
    component = dict(options["route_components"])["/x"]
    assert callable(component.on_message)


def test_wamp_class_target_needs_ratchetpy_wamp(monkeypatch):
    """A WAMP class is accepted when ratchetpy.wamp exists, refused clearly if not."""
    import types

    monkeypatch.setitem(sys.modules, "ratchetpy.wamp", types.ModuleType("ratchetpy.wamp"))
    options = parse("--route", "/wamp=tests.support.tap_targets:Pusher")
    assert type(dict(options["route_components"])["/wamp"]).__name__ == "Pusher"
    monkeypatch.setitem(sys.modules, "ratchetpy.wamp", None)
    message = error("--route", "/wamp=tests.support.tap_targets:Pusher")
    assert "WAMP" in message and "--route /wamp=" in message


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "no --route given: try --route /chat"),
        (["--route", "/nothing"], "--route /nothing: no built-in"),
        (["--route", "chat"], "must start with '/'"),
        (["--route", "/x=nope.module:Chat"], "cannot import module 'nope.module'"),
        (["--route", "/x=tests.support.tap_targets:Missing"], "has no 'Missing'"),
        (["--route", "/x=tests.support.tap_targets:NotAComponent"], "is not a component"),
        (["--route", "/x=tests.support.tap_targets:NeedsArgs"], "with no arguments"),
        (["--route", "/x=justaword"], "write package.module:Name"),
        (["--route", "/x=tests.support.tap_targets:Explodes"], "raised RuntimeError: database is down"),
        (["--route", "/chat", "--route", "/chat"], "routed twice"),
        (["--route", "/chat", "--keepalive", "soon"], "--keepalive 'soon'"),
        (["--route", "/chat", "--shutdown-timeout", "0"], "--shutdown-timeout '0'"),
        (["--route", "/chat", "--max-message-size", "lots"], "--max-message-size 'lots'"),
        (["--route", "/chat", "--listen", "bogus:1"], "--listen bogus:1"),
        (["--route", "/chat", "--tls-cert", "/no/such.pem"], "does not exist"),
        (["--route", "/chat", "--tls-key", "key.pem"], "--tls-key needs --tls-cert"),
        (["--route", "/chat", "--config", "/no/such.ini"], "--config /no/such.ini: cannot read"),
        (["--route", "/chat", "--bogus"], "--bogus"),
        (["--route", "/chat", "--block", "10.0.0.0/33"], "--block 10.0.0.0/33: not an IP address"),
        (["--route", "/chat", "--max-connections", "many"], "--max-connections 'many': give a whole number"),
        (["--route", "/chat", "--max-connections", "-1"], "--max-connections '-1': give a whole number"),
        (["--route", "/chat", "--max-connections-per-ip", "2.5"], "--max-connections-per-ip '2.5': give"),
        (["--route", "/chat", "--retry-after", "0"], "--retry-after '0': give a whole number of seconds"),
        (["--route", "/chat", "--idle-timeout", "-5"], "--idle-timeout '-5': give a number of seconds"),
        (["--route", "/chat", "--idle-timeout", "nan"], "--idle-timeout 'nan'"),
        (["--route", "/chat", "--metrics", "metrics"], "--metrics metrics: the metrics path must start with '/'"),
        (["--route", "/chat", "--metrics", "/m/{x}"], "--metrics /m/{x}: the metrics path must be a plain path"),
        (["--route", "/chat", "--metrics", "/chat"], "--metrics /chat: the route /chat already serves"),
        (["--route", "/chat", "--metrics", "/"], "--metrics /: the route / already serves"),
        (["--route", "/chat", "--metrics-listen", "tcp:nine"], "--metrics-listen tcp:nine: "),
        (["--route", "/chat", "--metrics-listen", "bogus:1"], "e.g. tcp:9100:interface=127.0.0.1"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(args, expected):
    """Every mistake ends with one line that names the flag and the fix."""
    message = error(*args)
    assert message.startswith("twistd ratchetpy: error: ")
    assert expected in message


def test_health_check_route():
    """A plain HTTP controller class can be routed from the command line."""
    from ratchetpy import HealthCheck

    options = parse("--route", "/chat", "--route", "/health=ratchetpy:HealthCheck")
    service = makeService(options, reactor=MemoryReactor())
    assert isinstance(dict(options["route_components"])["/health"], HealthCheck)
    data, _ = http_exchange(service.router, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok\n")


def test_block_flag_fills_the_apps_blacklist():
    """--block (repeatable, comma-separated) blocks addresses and ranges."""
    options = parse("--route", "/chat", "--block", "10.0.0.0/8,192.0.2.7", "--block", "2001:db8::/32")
    service = makeService(options, reactor=MemoryReactor())
    assert service.blacklist.get_blocked_addresses() == ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    assert service.blacklist.is_blocked("10.9.9.9") and not service.blacklist.is_blocked("127.0.0.1")


def test_sizes_and_zero():
    """--max-message-size takes K/M suffixes and 0 for unlimited; --keepalive 0 is off."""
    assert parse("--route", "/chat", "--max-message-size", "64K")["max-message-size"] == 65536
    assert parse("--route", "/chat", "--max-message-size", "0")["max-message-size"] is None
    assert parse("--route", "/chat", "--keepalive", "0")["keepalive"] == 0


def test_limits_and_idle_flags():
    """Limits and idle timeout are off by default; 0 means off; flags reach every route's WsServer."""
    defaults = parse("--route", "/chat")
    assert defaults["max-connections"] is None and defaults["max-connections-per-ip"] is None
    assert defaults["idle-timeout"] is None and defaults["idle-counts-pongs"] == 0
    assert defaults["retry-after"] == 5
    off = parse("--route", "/chat", "--max-connections", "0", "--idle-timeout", "0")
    assert off["max-connections"] is None and off["idle-timeout"] is None
    options = parse(
        "--route", "/chat", "--route", "/echo",
        "--max-connections", "1000", "--max-connections-per-ip", "20", "--retry-after", "30",
        "--idle-timeout", "300", "--idle-counts-pongs",
    )
    service = makeService(options, reactor=MemoryReactor())
    admission = service.admission
    assert (admission.max_connections, admission.max_connections_per_ip) == (1000, 20)
    assert admission.retry_after == 30
    assert len(service.ws_servers) == 2
    for ws in service.ws_servers:
        assert ws.admission is admission
        assert ws.idle_timeout == 300 and ws.idle_counts_pongs is True


def test_limits_in_the_config_file(tmp_path):
    """The ini keys are the flags' names; a flag on the command line wins."""
    ini = tmp_path / "limits.ini"
    ini.write_text(
        "[ratchetpy]\nroute = /chat\nmax-connections = 500\nmax_connections_per_ip = 10\n"
        "retry-after = 12\nidle-timeout = 90\nidle-counts-pongs = yes\n"
    )
    options = parse("--config", str(ini), "--max-connections", "50")
    assert options["max-connections"] == 50 and options["max-connections-per-ip"] == 10
    assert options["retry-after"] == 12 and options["idle-timeout"] == 90
    assert options["idle-counts-pongs"] == 1
    ini.write_text("[ratchetpy]\nroute = /chat\nidle-counts-pongs = often\n")
    assert "idle-counts-pongs must be true or false" in error("--config", str(ini))
    ini.write_text("[ratchetpy]\nroute = /chat\nmax-connections = lots\n")
    assert "--max-connections 'lots': give a whole number" in error("--config", str(ini))


def test_config_file_and_flags_win(tmp_path):
    """--config reads the flags' keys from [ratchetpy]; command-line flags win."""
    ini = tmp_path / "websock.ini"
    ini.write_text(
        textwrap.dedent(
            """
            [ratchetpy]
            listen = tcp:9001:interface=127.0.0.1
                     tcp:9002:interface=127.0.0.1
            route = /chat
                    /echo
            origin = example.com, www.example.com
            http-host = Example.com
            keepalive = 15
            max_message_size = 2M
            quiet = yes
            """
        )
    )
    options = parse("--config", str(ini), "--keepalive", "5", "--listen", "tcp:9003")
    assert options["listen"] == ["tcp:9003"]
    assert options["keepalive"] == 5
    assert [p for p, _ in options["route_components"]] == ["/chat", "/echo", "/"]
    assert options["origins"] == ["example.com", "www.example.com"]
    assert options["http-host"] == "example.com"
    assert options["max-message-size"] == 2 * 1024 * 1024
    assert options["quiet"] == 1


def test_config_unknown_key_and_missing_section(tmp_path):
    """Unknown keys and a missing [ratchetpy] section are named."""
    ini = tmp_path / "a.ini"
    ini.write_text("[ratchetpy]\nroute = /chat\nport = 80\n")
    assert "unknown key 'port'" in error("--config", str(ini))
    ini.write_text("[server]\nroute = /chat\n")
    assert "no [ratchetpy] section" in error("--config", str(ini))


def test_make_service_listens_on_each_endpoint():
    """makeService builds one App listening on every --listen endpoint."""
    reactor = MemoryReactor()
    options = parse(
        "--route", "/chat", "--listen", "tcp:9001:interface=127.0.0.1", "--listen", "tcp:9002"
    )
    service = makeService(options, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    assert [(s[0], s[3]) for s in reactor.tcpServers] == [(9001, "127.0.0.1"), (9002, "")]
    stopped = service.stopService()
    assert stopped.called


def test_make_service_applies_options():
    """Keepalive, size limit and quiet reach the WsServer; origins the OriginCheck."""
    options = parse(
        "--route", "/chat", "--keepalive", "7", "--max-message-size", "1K", "--quiet",
        "--origin", "example.com",
    )
    service = makeService(options, reactor=MemoryReactor())
    ws = service.ws_servers[0]
    assert isinstance(ws, WsServer) and ws.keep_alive_interval == 7
    assert ws._options["maxMessagePayloadSize"] == 1024
    assert ws.log_connections is False
    routed = service.router.routes[0].controller
    assert isinstance(routed, OriginCheck) and routed.allowed_origins == ["example.com"]
    assert routed.allow_missing is False


def test_default_origin_policy():
    """By default browsers must come from the same host; clients without Origin pass."""
    service = makeService(parse("--route", "/chat"), reactor=MemoryReactor())
    router = service.router
    assert http_exchange(router, handshake_request("/chat"))[0].startswith(b"HTTP/1.1 101 ")
    same = handshake_request("/chat", host="chat.local:8080", extra="Origin: http://chat.local:8080\r\n")
    assert http_exchange(router, same)[0].startswith(b"HTTP/1.1 101 ")
    evil = handshake_request("/chat", extra="Origin: http://evil.example\r\n")
    assert http_exchange(router, evil)[0].startswith(b"HTTP/1.1 403 ")
    page, _ = http_exchange(router, b"GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 OK") and b"<title>ratchetpy chat</title>" in page


def test_tls_shortcut_turns_tcp_into_ssl(tls_files):
    """--tls-cert/--tls-key serve TLS on the tcp: endpoints."""
    cert, key = tls_files
    options = parse("--route", "/chat", "--tls-cert", cert, "--tls-key", key)
    assert options["listen"][0].startswith("ssl:8080:interface=127.0.0.1:certKey=")
    reactor = MemoryReactor()
    service = makeService(options, reactor=reactor)
    service.privilegedStartService()
    assert len(reactor.sslServers) == 1 and not reactor.tcpServers


def test_example_config_parses():
    """examples/websock.ini is a valid config."""
    ini = EXAMPLES / "websock.ini"
    options = parse("--config", str(ini))
    assert [p for p, _ in options["route_components"]] == ["/chat", "/echo"]
    assert options["origins"] == ["localhost"] and options["http-host"] == "localhost"


def test_metrics_flags_and_config_keys(tmp_path):
    """--metrics and --metrics-listen, from flags or the ini file (flags win)."""
    options = parse("--route", "/chat", "--metrics", "/metrics", "--metrics-listen", "tcp:9100:interface=127.0.0.1")
    assert options["metrics"] == "/metrics" and options["metrics-listen"] == "tcp:9100:interface=127.0.0.1"
    ini = tmp_path / "websock.ini"
    ini.write_text("[ratchetpy]\nroute = /chat\nmetrics = /stats\nmetrics-listen = tcp:9101\n")
    options = parse("--config", str(ini), "--metrics-listen", "tcp:9102")
    assert options["metrics"] == "/stats" and options["metrics-listen"] == "tcp:9102"
    assert parse("--route", "/chat")["metrics"] is None


def test_make_service_serves_metrics():
    """makeService routes the metrics path and adds a listener started with the App."""
    reactor = MemoryReactor()
    options = parse(
        "--route", "/echo", "--metrics", "/metrics", "--metrics-listen", "tcp:9100:interface=127.0.0.1",
        "--listen", "tcp:9001:interface=127.0.0.1",
    )
    service = makeService(options, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    assert [(s[0], s[3]) for s in reactor.tcpServers] == [(9001, "127.0.0.1"), (9100, "127.0.0.1")]
    page, _ = http_exchange(service.router, b"GET /metrics HTTP/1.1\r\nHost: anything\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 OK") and b"ratchetpy_connections_open 0.0" in page
    listener = service.metrics_servers[0]
    assert listener.port is not None
    assert service.stopService().called and listener.port is None


def test_metrics_without_prometheus_client_is_one_line(monkeypatch):
    """Without prometheus-client, --metrics and --metrics-listen say which extra to install."""
    for name in [n for n in sys.modules if n.split(".")[0] == "prometheus_client"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "ratchetpy.hub.metrics", raising=False)
    for flag, value in (("--metrics", "/metrics"), ("--metrics-listen", "tcp:9100")):
        message = error("--route", "/chat", flag, value)
        assert message == (
            f"twistd ratchetpy: error: {flag}: the prometheus-client package is not installed; "
            "pip install 'ratchetpy[metrics]'"
        )
    assert parse("--route", "/chat")["metrics"] is None  # nothing asked, nothing needed
