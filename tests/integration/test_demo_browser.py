"""
The demo chat page in a real browser: two headless Chromium pages served by
``twistd ratchetpy --route /room/{name}=chat`` show their id and room and
exchange messages through the page's own JavaScript, in the default room
and after changing rooms. Chromium is driven over the DevTools protocol (loopback
only) with the ``websockets`` client.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from ratchetpy.server.ids import is_connection_id
from tests.support.ci import require_tool
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A minimal DevTools protocol client over one browser WebSocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, session: str | None = None, **params):
        message = {"id": next(self.ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + seconds(10)
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, what: str):
        deadline = time.monotonic() + seconds(15)
        while time.monotonic() < deadline:
            value = self.evaluate(session, expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


def start_chromium(profile: Path) -> subprocess.Popen:
    assert CHROMIUM is not None
    return subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def devtools_url(profile: Path, browser: subprocess.Popen) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + seconds(30)
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise AssertionError(f"chromium exited with {browser.returncode}")
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise AssertionError("chromium did not open its DevTools port")


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    """A headless Chromium driven over DevTools; closed (or killed) on the way out."""
    profile = tmp_path / "profile"
    browser = start_chromium(profile)
    try:
        with connect(devtools_url(profile, browser), max_size=None, open_timeout=seconds(10)) as ws:
            tools = DevTools(ws)
            yield tools
            tools.call("Browser.close")
    finally:
        if browser.poll() is None:
            browser.terminate()
            try:
                browser.wait(timeout=seconds(10))
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()


def test_two_browser_pages_chat(twistd, tmp_path):
    """
    Two pages of the demo chat for ``--route /room/{name}=chat``: each shows
    its id and room, a message typed in one appears in the other, changing
    rooms reconnects to the new room, and after a server restart both pages
    come back on their own, once each.
    """
    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    server = twistd("--route", "/room/{name}=chat")
    server.wait_listening()
    with chromium(tmp_path) as tools:
        pages = chat_between_two_pages(tools, f"http://127.0.0.1:{server.port}/")
        server.stop()
        log = server.text()
        assert log.count("opened /room/lobby") == 2 and log.count("opened /room/dev") == 2
        for session, _ in pages:
            tools.wait_for(
                session,
                "document.getElementById('status').textContent.indexOf('reconnecting in') !== -1",
                "the page to say it will reconnect",
            )
        server = twistd("--route", "/room/{name}=chat", port=server.port)
        server.wait_listening()
        for session, old_id in pages:
            wait_welcomed(tools, session, "dev", not_id=old_id)
    server.stop()
    assert server.text().count("opened /room/dev") == 2


SHOWN = "[document.getElementById('my-id').textContent, document.getElementById('room-name').textContent]"


def wait_welcomed(tools: DevTools, session: str, room: str, not_id: str | None = None) -> str:
    """Wait until the page shows a connection id in ``room`` (other than ``not_id``); that id."""
    tools.wait_for(
        session,
        f"(function () {{ var s = {SHOWN}; return s[1] === {json.dumps(room)} && s[0].length > 20"
        f" && s[0] !== {json.dumps(not_id or '')}"
        " && document.getElementById('status').dataset.state === 'open'; })()",
        f"the page to show its id in room {room}",
    )
    shown_id, shown_room = tools.evaluate(session, SHOWN)
    assert is_connection_id(shown_id), shown_id
    assert shown_room == room
    return shown_id


def send_from(tools: DevTools, session: str, text: str) -> None:
    tools.evaluate(
        session,
        f"document.getElementById('message').value = {json.dumps(text)};"
        "document.getElementById('send').click(); true",
    )


def wait_received(tools: DevTools, session: str, text: str) -> None:
    tools.wait_for(
        session,
        "Array.from(document.querySelectorAll('#log li.them')).map(e => e.textContent)"
        f".indexOf({json.dumps(text)}) !== -1",
        f"the page to show {text!r}",
    )


def join_room(tools: DevTools, session: str, room: str) -> None:
    tools.evaluate(
        session,
        f"document.getElementById('room-input').value = {json.dumps(room)};"
        "document.getElementById('join').click(); true",
    )


def chat_between_two_pages(tools: DevTools, page_url: str) -> list[tuple[str, str]]:
    """
    Open the page twice (lobby), chat, then both move to room dev and chat
    there; each page's session and id.
    """
    sessions = []
    for _ in range(2):
        target = tools.call("Target.createTarget", url=page_url)["targetId"]
        sessions.append(tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
    a, b = sessions
    id_a, id_b = (wait_welcomed(tools, session, "lobby") for session in sessions)
    assert id_a != id_b
    send_from(tools, a, "hello from page A")
    wait_received(tools, b, "hello from page A")
    mine = tools.evaluate(a, "Array.from(document.querySelectorAll('#log li.me')).map(e => e.textContent)")
    assert mine == ["me: hello from page A"]
    # The page's own text never went through innerHTML: the log holds text only.
    assert tools.evaluate(b, "document.querySelectorAll('#log li *').length") == 0

    ids = {}
    for session, old_id in ((b, id_b), (a, id_a)):
        join_room(tools, session, "dev")
        ids[session] = wait_welcomed(tools, session, "dev", not_id=old_id)
    assert tools.evaluate(a, "location.hash") == "#dev"
    send_from(tools, a, "hello in dev")
    wait_received(tools, b, "hello in dev")
    return [(a, ids[a]), (b, ids[b])]


def test_a_backend_process_pushes_to_exactly_one_browser(twistd, tmp_path):
    """
    The loop phpWebSocketServer exists for: a page shows its connection id,
    a separate backend process (curl, as a PHP backend's HTTP call) POSTs to
    the publish API with that id, and exactly that page shows the message.
    """
    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    require_tool(shutil.which("curl") is not None, "curl is not installed", "apt-get install curl")
    key = "browser-test-key-0123456789"
    server = twistd("--route", "/room/{name}=chat", "--push-api", "/push", "--push-key", key)
    server.wait_listening()
    with chromium(tmp_path) as tools:
        sessions = []
        for _ in range(2):
            target = tools.call("Target.createTarget", url=f"http://127.0.0.1:{server.port}/")
            sessions.append(
                tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
            )
        page_a, page_b = sessions
        id_a = wait_welcomed(tools, page_a, "lobby")
        wait_welcomed(tools, page_b, "lobby")
        body = json.dumps({"client": id_a, "data": "from the backend"})
        backend = subprocess.run(
            [
                "curl", "-sS", "--max-time", "10", "-H", f"Authorization: Bearer {key}",
                "-d", body, f"http://127.0.0.1:{server.port}/push",
            ],
            capture_output=True,
            text=True,
            timeout=seconds(20),
        )
        assert backend.returncode == 0, backend.stderr
        assert json.loads(backend.stdout) == {"delivered": 1}
        wait_received(tools, page_a, "from the backend")
        # page B: a marker pushed after, to it, arrives alone (nothing else came before it)
        id_b = tools.evaluate(page_b, "document.getElementById('my-id').textContent")
        marker = json.dumps({"client": id_b, "data": "marker"})
        subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-H", f"Authorization: Bearer {key}",
             "-d", marker, f"http://127.0.0.1:{server.port}/push"],
            capture_output=True, timeout=seconds(20), check=True,
        )
        wait_received(tools, page_b, "marker")
        shown_b = tools.evaluate(
            page_b, "Array.from(document.querySelectorAll('#log li.them')).map(e => e.textContent)"
        )
        assert not any("from the backend" in line for line in shown_b), shown_b
    server.stop()


def test_a_page_back_in_its_room_shows_what_it_missed(twistd, tmp_path):
    """
    With ``--chat-history``, a page that left the lobby for another room and
    comes back is shown the lobby messages sent meanwhile (and not its own),
    then a line saying how many it recovered.
    """
    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    server = twistd("--route", "/room/{name}=chat", "--chat-history", "20")
    server.wait_listening()
    with chromium(tmp_path) as tools:
        sessions = []
        for _ in range(2):
            target = tools.call("Target.createTarget", url=f"http://127.0.0.1:{server.port}/")
            sessions.append(
                tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
            )
        a, b = sessions
        wait_welcomed(tools, a, "lobby")
        id_b = wait_welcomed(tools, b, "lobby")
        send_from(tools, a, "before")
        wait_received(tools, b, "before")
        send_from(tools, b, "b's own")
        wait_received(tools, a, "b's own")
        join_room(tools, b, "dev")
        wait_welcomed(tools, b, "dev", not_id=id_b)
        send_from(tools, a, "while you were away")
        send_from(tools, a, "and this")
        join_room(tools, b, "lobby")
        tools.wait_for(
            b,
            "Array.from(document.querySelectorAll('#log li.info')).some("
            "e => e.textContent.indexOf('Recovered 2 message(s)') !== -1)",
            "page B to say it recovered two messages",
        )
        missed = tools.evaluate(
            b, "Array.from(document.querySelectorAll('#log li.missed')).map(e => e.textContent)"
        )
        assert missed == ["while you were away", "and this"]
        send_from(tools, a, "live again")
        wait_received(tools, b, "live again")
        shown = tools.evaluate(b, "Array.from(document.querySelectorAll('#log li.them')).map(e => e.textContent)")
        assert shown == ["before", "while you were away", "and this", "live again"], shown
    server.stop()
