"""
A real ``twistd -n ratchetpy`` process driven by real clients.

Each test starts twistd from the same environment as the tests
(``sys.executable``'s directory), on a free loopback port, with the
worktree first on PYTHONPATH so the plugin and package under test are used.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ratchetpy.server.ids import is_connection_id
from tests.support.processes import TWISTD, python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

def status_of(url: str, **kwargs) -> int:
    try:
        with connect(url, open_timeout=seconds(5), **kwargs):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_chat_demo_page_and_refusals(twistd):
    """``--route /chat``: two clients chat, / is the page, 404/403/405 as Ratchet."""
    server = twistd("--route", "/chat")
    server.wait_listening()
    base = f"127.0.0.1:{server.port}"
    with connect(f"ws://{base}/chat") as a, connect(f"ws://{base}/chat") as b:
        welcomes = [json.loads(client.recv(timeout=seconds(5))) for client in (a, b)]
        assert [w["room"] for w in welcomes] == ["chat", "chat"]
        assert all(is_connection_id(w["id"]) for w in welcomes)
        a.send("hello from a")
        assert b.recv(timeout=seconds(5)) == "hello from a"
        b.send(b"\x00binary")
        assert a.recv(timeout=seconds(5)) == b"\x00binary"
    with urllib.request.urlopen(f"http://{base}/", timeout=seconds(5)) as page:
        body = page.read()
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert int(page.headers["Content-Length"]) == len(body)
        assert b"new WebSocket(url" in body and b'{"path": "/chat"}' in body
    assert status_of(f"ws://{base}/nope") == 404
    assert status_of(f"ws://{base}/chat", origin="http://evil.example") == 403
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(f"http://{base}/chat", method="POST"), timeout=seconds(5))
    assert caught.value.code == 405 and caught.value.headers["Allow"] == "GET"
    server.stop()
    log = server.text()
    assert "with 404" in log and "with 403" in log and "--origin evil.example" in log


def test_chat_rooms(twistd):
    """``--route /room/{name}=chat``: a channel per room, each client told its id and room, page at /."""
    server = twistd("--route", "/room/{name}=chat")
    server.wait_listening()
    base = f"127.0.0.1:{server.port}"
    with urllib.request.urlopen(f"http://{base}/", timeout=seconds(5)) as page:
        assert b'{"prefix": "/room/", "suffix": "", "room": "lobby"}' in page.read()
    with ExitStack() as stack:
        a, b, c, d = (
            stack.enter_context(connect(f"ws://{base}/room/{room}", open_timeout=seconds(5)))
            for room in ("lobby", "lobby", "dev", "dev")
        )
        welcomes = [json.loads(client.recv(timeout=seconds(5))) for client in (a, b, c, d)]
        assert [w["room"] for w in welcomes] == ["lobby", "lobby", "dev", "dev"]
        assert len({w["id"] for w in welcomes}) == 4
        c.send("in dev")
        assert d.recv(timeout=seconds(5)) == "in dev"
        a.send("in lobby")
        # Had "in dev" leaked into the lobby it would be ahead of this in b's stream.
        assert b.recv(timeout=seconds(5)) == "in lobby"
    server.stop()
    assert server.text().count("opened /room/lobby") == 2


def test_sigterm_closes_clients_with_1001(twistd):
    """SIGTERM: stop listening, every client gets 1001, on_close runs, twistd exits."""
    server = twistd("--route", "/chat", "--route", "/echo")
    server.wait_listening()
    base = f"ws://127.0.0.1:{server.port}"
    with connect(f"{base}/chat") as a, connect(f"{base}/echo") as b:
        # Both open before the signal: the chat's welcome, the echo's reply.
        assert json.loads(a.recv(timeout=seconds(5)))["type"] == "welcome"
        b.send("ping")
        assert b.recv(timeout=seconds(5)) == "ping"
        server.process.send_signal(signal.SIGTERM)
        for client in (a, b):
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=seconds(10))
            assert client.close_code == 1001
    code = server.stop()
    # After the graceful stop twistd re-raises the signal on itself, so init
    # systems record a stop by SIGTERM (a clean stop for systemd), not a crash.
    assert code == -signal.SIGTERM
    log = server.text()
    assert log.count("closed /chat (1001)") == 1 and log.count("closed /echo (1001)") == 1
    assert "Stopped: all connections closed" in log
    assert "Traceback" not in log


def test_module_target_and_config_file(twistd, tmp_path, free_port):
    """--config supplies listen and a module:Class route; flags win over it."""
    port = free_port
    ini = tmp_path / "websock.ini"
    ini.write_text(
        "[ratchetpy]\n"
        f"listen = tcp:{port}:interface=127.0.0.1\n"
        "route = /room/{name}=examples.chat:Chat\n"
        "keepalive = 0\n"
        "quiet = true\n"
    )
    server = twistd("--config", str(ini), port=port, listen=False)
    server.wait_listening()
    with connect(f"ws://127.0.0.1:{port}/room/a") as a, connect(f"ws://127.0.0.1:{port}/room/b") as b:
        a.send("via examples.chat")
        assert b.recv(timeout=seconds(5)) == "via examples.chat"
    server.stop()
    assert "opened" not in server.text()  # quiet = true


def test_wss_with_self_signed_certificate(twistd, tls_files, free_port):
    """TLS via --tls-cert/--tls-key and via an ssl: endpoint; the client checks the hostname."""
    cert, key = tls_files
    ssl_port = free_port
    server = twistd(
        "--route", "/echo",
        "--tls-cert", cert, "--tls-key", key,
        "--listen", f"ssl:{ssl_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
    )
    server.wait_listening()
    server.wait_listening(ssl_port)
    context = ssl.create_default_context(cafile=cert)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    for port in (server.port, ssl_port):
        with connect(f"wss://localhost:{port}/echo", ssl=context) as ws:
            ws.send("secure")
            assert ws.recv(timeout=seconds(5)) == "secure"
    # A client expecting another host name is refused by its own check.
    other = ssl.create_default_context(cafile=cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        with connect(f"wss://localhost:{server.port}/echo", ssl=other, server_hostname="example.com"):
            pass
    server.stop()


def one_line_error(twistd, *args: str, **kwargs) -> str:
    server = twistd(*args, **kwargs)
    code = server.process.wait(timeout=seconds(15))
    # Before logging starts the error goes to stderr; after, twistd logs stderr.
    output = server.process.stderr.read().decode() + server.text()
    assert code != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "twistd ratchetpy: error:" in line]
    assert len(lines) == 1, output
    return lines[0].partition("] ")[2] if "] twistd" in lines[0] else lines[0]


def test_port_in_use_is_one_line(twistd):
    """A port in use ends twistd with one line naming --listen and the fix."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        line = one_line_error(twistd, "--route", "/chat", port=busy.getsockname()[1])
    assert line.startswith("twistd ratchetpy: error: cannot listen on tcp:")
    assert "--listen" in line


def test_unimportable_target_is_one_line(twistd):
    """An unimportable route target is one line naming the flag."""
    line = one_line_error(twistd, "--route", "/x=no_such_module:Chat")
    assert "--route /x=no_such_module:Chat: cannot import module 'no_such_module'" in line


def test_port_in_use_when_daemonizing_does_not_hang(tmp_path):
    """Without -n, a port in use makes twistd's launcher exit 1 with the reason."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                str(TWISTD), f"--pidfile={tmp_path / 'twistd.pid'}", f"--logfile={tmp_path / 'twistd.log'}",
                "ratchetpy", "--route", "/chat", "--listen", f"tcp:{port}:interface=127.0.0.1",
            ],
            capture_output=True, text=True, cwd=tmp_path, env=python_path_env(), timeout=seconds(20),
        )
    assert result.returncode == 1
    assert "cannot listen on tcp:" in result.stderr
    log = (tmp_path / "twistd.log").read_text()
    assert "twistd ratchetpy: error: cannot listen on tcp:" in log and "Traceback" not in log


def test_limits_and_idle_timeout_flags(twistd):
    """--max-connections refuses with 503 + Retry-After (logged once per burst);
    --idle-timeout closes a silent client with 1001 even though it answers keepalive pings."""
    server = twistd(
        "--route", "/echo", "--max-connections", "1", "--retry-after", "3",
        "--idle-timeout", "1", "--keepalive", "0.3",
    )
    server.wait_listening()
    url = f"ws://127.0.0.1:{server.port}/echo"
    with connect(url, proxy=None) as silent:
        refusals = []
        for _ in range(3):
            with pytest.raises(InvalidStatus) as caught:
                connect(url, open_timeout=seconds(5), proxy=None)
            refusals.append((caught.value.response.status_code, caught.value.response.headers["Retry-After"]))
        assert refusals == [(503, "3")] * 3
        with pytest.raises(ConnectionClosed):
            silent.recv(timeout=seconds(10))
        assert (silent.close_code, silent.close_reason) == (1001, "Idle timeout")
    # Its place is free again once the server saw the connection go.
    deadline = time.monotonic() + seconds(5)
    while status_of(url, proxy=None) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(url, proxy=None) == 101
    server.stop()
    log = server.text()
    assert log.count("Refusing WebSocket connections with 503") == 1
    assert "max_connections (1) reached" in log and "--max-connections" in log
    # 3, or more if the wait above was refused too: all in one burst, one summary.
    (refused,) = re.findall(r"Refused (\d+) WebSocket connection\(s\) with 503", log)
    assert int(refused) >= 3
    assert "Closing 1 idle WebSocket connection(s) with 1001" in log
    assert "Traceback" not in log
def test_metrics_on_the_port_and_on_their_own(twistd, free_port):
    """--metrics /metrics and --metrics-listen: both scraped after a client's traffic."""
    from prometheus_client.parser import text_string_to_metric_families

    server = twistd(
        "--route", "/echo", "--metrics", "/metrics",
        "--metrics-listen", f"tcp:{free_port}:interface=127.0.0.1",
    )
    server.wait_listening()
    server.wait_listening(free_port)
    with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
        ws.send("one")
        assert ws.recv(timeout=seconds(5)) == "one"
        for url in (f"http://127.0.0.1:{server.port}/metrics", f"http://127.0.0.1:{free_port}/metrics"):
            with urllib.request.urlopen(url, timeout=seconds(5)) as response:
                families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
            assert families["ratchetpy_connections_open"].samples[0].value == 1
            assert families["ratchetpy_messages_received"].samples[0].value == 1
    assert status_of(f"ws://127.0.0.1:{free_port}/echo") == 404  # the metrics port serves metrics only
    assert server.stop() == -signal.SIGTERM


def test_metrics_port_in_use_is_one_line(twistd):
    """A --metrics-listen port in use ends twistd with one line naming that flag."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = one_line_error(twistd, "--route", "/chat", "--metrics-listen", f"tcp:{port}:interface=127.0.0.1")
    assert line.startswith(f"twistd ratchetpy: error: cannot listen on tcp:{port}:interface=127.0.0.1 (metrics)")
    assert "--metrics-listen" in line
