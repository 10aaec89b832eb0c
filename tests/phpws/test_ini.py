"""``twistd ratchetpy --config`` with phpWebSocketServer's own ini files, and the --phpws-* flags."""

from __future__ import annotations

import textwrap

import pytest
from twisted.internet.testing import MemoryReactor

from ratchetpy.phpws import PhpWsServer
from ratchetpy.tap import makeService
from tests.support.paths import EXAMPLES
from tests.support.tap import error, parse

# server/websock.ini as phpWebSocketServer shipped it (2025-07 layout, no section)
WEBSOCK_INI = """

adress='ws://localhost:8096'
logfile={log}
console=false
certFile=''
pkFile=''

"""

# config/config_example.ini's layout (since 2025-08)
CONFIG_INI = """#
# Configuration for WebSocket Server only
[websocketserver]
adress = 'ws://127.0.0.1:8095'
logfile = ${{LOG_FILE}}
console = true
certFile =
pkFile =
#
[jsauth]
require={require}
ssp=${{SAVE_SESSION_PATH}}
cookie_name = "PHPSESSID"
key = allowconnect
#
[develop]
developsystem = true ; Set to false in production
"""


def write(tmp_path, text, name="websock.ini"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def phpws_paths(options):
    return [path for path, c in options["route_components"] if isinstance(c, PhpWsServer)]


def test_sectionless_websock_ini(tmp_path):
    options = parse("--config", write(tmp_path, WEBSOCK_INI.format(log=tmp_path / "websock.log")))
    assert options["listen"] == ["tcp:8096:interface=localhost"]
    assert phpws_paths(options) == ["/", "/web", "/php"]
    assert options["phpws-log-file"] == str(tmp_path / "websock.log")
    assert options["tls-cert"] is None


def test_sectioned_config_ini_with_environment_variables(tmp_path, monkeypatch):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "ws.log"))
    monkeypatch.setenv("SAVE_SESSION_PATH", str(sessions))
    options = parse("--config", write(tmp_path, CONFIG_INI.format(require="true"), "config.ini"))
    assert options["listen"] == ["tcp:8095:interface=127.0.0.1"]
    assert options["phpws-log-file"] == str(tmp_path / "ws.log")
    jsauth = options["phpws-settings"].jsauth
    assert (jsauth.save_path, jsauth.key, jsauth.cookie_name) == (str(sessions), "allowconnect", "PHPSESSID")
    assert any("developsystem" in note for note in options["phpws-notes"])


def test_jsauth_off_and_flags_win_over_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "ws.log"))
    monkeypatch.setenv("SAVE_SESSION_PATH", str(tmp_path))
    path = write(tmp_path, CONFIG_INI.format(require="false"), "config.ini")
    options = parse("--config", path, "--listen", "tcp:9999:interface=127.0.0.1", "--route", "/web=phpws",
                    "--phpws-max-clients", "7")
    assert options["listen"] == ["tcp:9999:interface=127.0.0.1"]
    assert phpws_paths(options) == ["/web"]
    assert options["phpws-settings"].jsauth is None
    assert options["phpws-settings"].max_clients == 7


def test_wss_with_certificate_files_listens_with_tls(tmp_path, tls_files):
    cert, key = tls_files
    options = parse("--config", write(tmp_path, f"adress = 'wss://127.0.0.1:8443'\ncertFile = {cert}\npkFile = {key}\n"))
    (listen,) = options["listen"]
    assert listen.startswith("ssl:8443:") and "interface=127.0.0.1" in listen


def test_wss_without_certificate_files_listens_plain_and_says_so(tmp_path):
    options = parse("--config", write(tmp_path, "adress = 'ssl://0.0.0.0'\n"))
    assert options["listen"] == ["tcp:443:interface=0.0.0.0"]
    assert any("listening plain" in note for note in options["phpws-notes"])


def test_make_service_routes_phpws_and_answers_unknown_paths(tmp_path):
    options = parse("--config", write(tmp_path, "adress='ws://127.0.0.1:8096'\n"))
    app = makeService(options, MemoryReactor())
    paths = [route.path for route in app.router.routes]
    assert paths == ["/", "/web", "/php", "/{phpws_unknown<.*>}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adress='ws://127.0.0.1:8096'\nport=8096\n", "unknown key 'port' in [websocketserver]"),
        ("adress='http://127.0.0.1:8096'\n", "the scheme must be ws or tcp (plain) or wss or ssl (TLS)"),
        ("adress='127.0.0.1:8096'\n", "write scheme://host:port"),
        ("adress='ws://127.0.0.1:99999'\n", "the port must be a number from 1 to 65535"),
        ("logfile=/tmp/x.log\nadress=\n", "no adress in [websocketserver]"),
        ("adress='ws://127.0.0.1:8096'\nconsole=maybe\n", "console in [websocketserver] must be true or false"),
        ("adress='${PHPWS_TEST_UNSET_VARIABLE}'\n", "uses ${PHPWS_TEST_UNSET_VARIABLE}, which is not set"),
        ("[websocketserver]\nadress='ws://127.0.0.1:1'\n[jsauth]\nrequire=true\n", "require is true but ssp or key is empty"),
        ("[websocketserver]\nadress='ws://127.0.0.1:1'\n[jsauth]\nrequire=1\nuser=x\n", "unknown key 'user' in [jsauth]"),
        ("adress='wss://127.0.0.1:1'\ncertFile=cert.pem\n", "only one of certFile/pkFile is set"),
    ],
)
def test_bad_phpws_ini_files_are_one_clear_line(tmp_path, text, expected):
    message = error("--config", write(tmp_path, text))
    assert "(a phpWebSocketServer ini file)" in message
    assert expected in message


def test_our_own_ini_format_is_unchanged():
    options = parse("--config", str(EXAMPLES / "websock.ini"))
    assert options["listen"] == ["tcp:8080:interface=127.0.0.1"]
    assert "/chat" in dict(options["route_components"])


def test_phpws_keys_in_our_own_ini(tmp_path):
    path = write(tmp_path, "[ratchetpy]\nroute = /web=phpws\nphpws-max-per-ip = 3\nphpws-origins = https://a.example, https://b.example\n")
    settings = parse("--config", path)["phpws-settings"]
    assert settings.max_per_ip == 3
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--phpws-max-clients", "x"], "--phpws-max-clients 'x': give a whole number"),
        (["--phpws-ping-interval", "-1"], "--phpws-ping-interval '-1': give a number of seconds"),
        (["--phpws-php-allow", "10.0.0.0/33"], "--phpws-php-allow: '10.0.0.0/33' is not an IP address"),
        (["--phpws-trusted-proxies", "proxy"], "--phpws-trusted-proxies: 'proxy' is not an IP address"),
        (["--phpws-jsauth-key", "allowconnect"], "add --phpws-jsauth-save-path"),
        (["--phpws-jsauth-save-path", "/nonexistent/dir", "--phpws-jsauth-key", "k"], "is not a directory"),
        (["--phpws-log-file", "/nonexistent/dir/x.log"], "--phpws-log-file /nonexistent/dir/x.log: cannot write"),
    ],
)
def test_bad_phpws_flags_are_one_clear_line(args, expected):
    assert expected in error("--route", "/web=phpws", *args)


def test_phpws_flags_without_a_phpws_route():
    assert "no route serves phpws" in error("--route", "/chat", "--phpws-max-clients", "2")


@pytest.mark.slow
def test_twistd_serves_from_phpwebsocketservers_own_ini(tmp_path, twistd, free_port):
    from tests.phpws.support import RawClient

    log = tmp_path / "websock.log"
    ini = write(tmp_path, f"adress='ws://127.0.0.1:{free_port}'\nlogfile={log}\nconsole=false\ncertFile=''\npkFile=''\n")
    server = twistd("--config", ini, port=free_port, listen=False)
    server.wait_listening()
    for path, php in (("/php", True), ("/web", False)):
        client = RawClient(free_port, path, php=php)
        client.read_head()
        assert client.packet()["opcode"] == "ready"
        client.close()
    server.stop()
    assert "opened /php" in log.read_text()


def test_a_resource_class_is_routable_as_a_target():
    from tests.phpws.resources import Broken

    options = parse("--route", "/web=tests.phpws.resources:Broken", "--route", "/php=phpws")
    components = dict(options["route_components"])
    assert isinstance(components["/web"], PhpWsServer) and isinstance(components["/web"].resource, Broken)
    assert type(components["/php"].resource).__name__ == "DefaultResource"


@pytest.mark.slow
def test_twistd_serves_wss_from_its_ini_with_cert_files(tmp_path, twistd, free_port, tls_files):
    import socket
    import ssl

    from tests.phpws.support import phpws_request

    cert, key = tls_files
    ini = write(tmp_path, f"adress='wss://127.0.0.1:{free_port}'\ncertFile={cert}\npkFile={key}\n")
    server = twistd("--config", ini, port=free_port, listen=False)
    server.wait_listening()
    context = ssl.create_default_context(cafile=cert)
    with socket.create_connection(("127.0.0.1", free_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(phpws_request("/php", php=True, host="localhost"))
            data = b""
            while b'"opcode":"ready"' not in data:
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
    assert data.startswith(b"HTTP/1.1 101 ")
