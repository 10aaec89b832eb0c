"""
The demo chat page in a real browser: two headless Chromium pages served by
``twistd ratchetpy --route /chat`` exchange a message through the page's
own JavaScript. Chromium is driven over the DevTools protocol (loopback
only) with the ``websockets`` client.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

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


def test_two_browser_pages_chat(twistd, tmp_path):
    """Two pages of the demo chat: a message typed in one appears in the other."""
    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    server = twistd("--route", "/chat")
    server.wait_listening()
    profile = tmp_path / "profile"
    browser = start_chromium(profile)
    try:
        with connect(devtools_url(profile, browser), max_size=None, open_timeout=seconds(10)) as ws:
            chat_between_two_pages(DevTools(ws), f"http://127.0.0.1:{server.port}/")
    finally:
        if browser.poll() is None:
            browser.terminate()
            try:
                browser.wait(timeout=seconds(10))
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
    server.stop()
    assert server.text().count("opened /chat") == 2


def chat_between_two_pages(tools: DevTools, page_url: str) -> None:
    """Open the page twice, type in the first, see it in the second."""
    sessions = []
    for _ in range(2):
        target = tools.call("Target.createTarget", url=page_url)["targetId"]
        sessions.append(tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
    for session in sessions:
        tools.wait_for(
            session,
            "document.getElementById('status') && document.getElementById('status').dataset.state === 'open'",
            "the page's WebSocket to open",
        )
    a, b = sessions
    tools.evaluate(
        a,
        "document.getElementById('message').value = 'hello from page A';"
        "document.getElementById('send').click(); true",
    )
    received = tools.wait_for(
        b,
        "Array.from(document.querySelectorAll('#log li.them')).map(e => e.textContent)"
        ".filter(t => t === 'hello from page A').length > 0",
        "page B to show page A's message",
    )
    assert received is True
    mine = tools.evaluate(a, "Array.from(document.querySelectorAll('#log li')).map(e => e.textContent)")
    assert mine == ["me: hello from page A"]
    tools.call("Browser.close")
