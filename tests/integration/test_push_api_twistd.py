"""
``twistd -n ratchetpy --push-api``: a real server process, a WebSocket
client, and curl as the backend, on the API's own loopback endpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from websockets.sync.client import connect

from ratchetpy.tap import PUSH_KEY_ENV
from tests.support.processes import free_port
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

KEY = "twistd-test-key-5b1e0c9d4a"


def curl(*args: str) -> tuple[int, bytes]:
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, timeout=seconds(30)
    )
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_push_api_on_a_loopback_only_endpoint(twistd, monkeypatch):
    """The key from the environment; the API answers on --push-listen only, the routes elsewhere."""
    monkeypatch.setenv(PUSH_KEY_ENV, KEY)
    api_port = free_port()
    server = twistd(
        "--route", "/ws=tests.support.push_targets:IdFirst",
        "--push-api", "/push",
        "--push-listen", f"tcp:{api_port}:interface=127.0.0.1",
    )
    server.wait_listening()
    server.wait_listening(api_port)
    api = f"http://127.0.0.1:{api_port}/push"
    auth = ["-H", f"Authorization: Bearer {KEY}"]
    with connect(f"ws://127.0.0.1:{server.port}/ws?room=lobby", open_timeout=seconds(10)) as a, \
            connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=seconds(10)) as b:
        id_a, id_b = a.recv(timeout=seconds(10)), b.recv(timeout=seconds(10))
        status, body = curl(*auth, "-d", json.dumps({"client": id_a, "data": "hello a"}), api)
        assert (status, json.loads(body)) == (200, {"delivered": 1})
        assert a.recv(timeout=seconds(10)) == "hello a"
        status, body = curl(*auth, "-d", json.dumps({"channel": "lobby", "data": [1, 2]}), api)
        assert (status, json.loads(body)) == (200, {"delivered": 1})
        assert a.recv(timeout=seconds(10)) == "[1,2]"
        status, body = curl(*auth, "-d", json.dumps({"client": id_b, "data": "marker"}), api)
        assert status == 200 and b.recv(timeout=seconds(10)) == "marker"
        status, body = curl(*auth, f"{api}/channels/lobby")
        assert (status, json.loads(body)) == (200, {"channel": "lobby", "member_count": 1})
    # The public endpoint does not serve the API; the API endpoint serves nothing else.
    assert curl(*auth, "-d", "{}", f"http://127.0.0.1:{server.port}/push")[0] == 404
    assert curl(f"http://127.0.0.1:{api_port}/ws")[0] == 404
    assert curl("-d", "{}", api)[0] == 401
    server.stop()
    log = server.text()
    assert "Publish API at /push (on its own endpoints only" in log
    assert "refused POST /push from 127.0.0.1 with 401" in log
    assert KEY not in log


def test_push_api_without_a_key_is_one_line(twistd, monkeypatch):
    monkeypatch.delenv(PUSH_KEY_ENV, raising=False)
    server = twistd("--route", "/chat", "--push-api", "/push")
    code = server.process.wait(timeout=seconds(15))
    output = server.process.stderr.read().decode() + server.text()
    assert code != 0 and "Traceback" not in output
    lines = [line for line in output.splitlines() if "twistd ratchetpy: error:" in line]
    assert len(lines) == 1, output
    assert "--push-api /push needs a key" in lines[0] and PUSH_KEY_ENV in lines[0]
