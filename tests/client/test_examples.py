"""
The client examples, each run as a subprocess against ``twistd ratchetpy``:
the chat client (typing, reading, surviving a server restart), a backend
feeding one browser by uuid on a ``phpws`` route, and two scripts talking
by name (php2php).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from ratchetpy.client.phpws import connect_php
from tests.support.paths import ROOT
from tests.support.processes import python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


class Example:
    """An example script as a subprocess; its stdout lines read with a timeout."""

    def __init__(self, name: str, *args: str, stdin: Any = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / name), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=python_path_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # closed by the fixture at the end of the test

    def line(self) -> str:
        try:
            return self.lines.get(timeout=seconds(30))
        except queue.Empty:
            raise AssertionError(f"no output line in time; stderr so far: {self.stderr()}") from None

    def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def wait(self) -> int:
        return self.process.wait(timeout=seconds(30))

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()


@pytest.fixture
def running() -> Iterator[Any]:
    started: list[Example] = []

    def start(name: str, *args: str, stdin: Any = None) -> Example:
        started.append(Example(name, *args, stdin=stdin))
        return started[-1]

    yield start
    for process in (e.process for e in started):
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_chat_client_types_reads_and_reconnects(twistd: Any, running: list[Any]) -> None:
    server = twistd("--route", "/chat=examples.chat:Chat")
    server.wait_listening()
    url = f"ws://127.0.0.1:{server.port}/chat"
    with ws_connect(url, open_timeout=seconds(10)) as other:
        client = running("chat_client.py", url, stdin=subprocess.PIPE)
        assert client.line() == "connected"
        client.write("hello from the example\n")
        assert other.recv(timeout=seconds(20)) == "hello from the example"
        other.send("hi back")
        assert client.line() == "hi back"

    server.kill()
    assert client.line() == "disconnected"
    restarted = twistd("--route", "/chat=examples.chat:Chat", port=server.port)
    restarted.wait_listening()
    assert client.line() == "connected"
    with ws_connect(url, open_timeout=seconds(10)) as other:
        client.write("after the restart\n")
        assert other.recv(timeout=seconds(20)) == "after the restart"
    client.process.stdin.close()
    assert client.wait() == 0


@pytest.fixture
def phpws(twistd: Any) -> Any:
    server = twistd("--route", "/web=phpws", "--route", "/php=phpws")
    server.wait_listening()
    return server


def browser(stack: ExitStack, port: int) -> tuple[Any, str]:
    ws = stack.enter_context(
        ws_connect(f"ws://127.0.0.1:{port}/web", origin="http://127.0.0.1", open_timeout=seconds(10))
    )
    ready = json.loads(ws.recv(timeout=seconds(10)))
    assert ready["opcode"] == "ready"
    return ws, ready["uuid"]


def test_backend_feeds_exactly_one_browser_by_uuid(phpws: Any, running: list[Any]) -> None:
    with ExitStack() as stack:
        first, first_uuid = browser(stack, phpws.port)
        second, second_uuid = browser(stack, phpws.port)
        feed = running(
            "phpws_feed.py", f"ws://127.0.0.1:{phpws.port}/php", first_uuid,
            "--steps", "2", "--pause", "0",
        )
        got = [json.loads(first.recv(timeout=seconds(20))) for _ in range(3)]
        assert [p["message"] for p in got] == ["step 1 of 2 done", "step 2 of 2 done", "done"]
        assert all(p["opcode"] == "feedback" and p["uuid"] == first_uuid for p in got)
        assert feed.wait() == 0, feed.stderr()
        # the other browser got none of it: a marker sent now is the next thing it sees
        with connect_php(f"ws://127.0.0.1:{phpws.port}/php") as php:
            php.feedback("marker", uuid=second_uuid)
        assert json.loads(second.recv(timeout=seconds(20)))["message"] == "marker"


def test_two_scripts_talk_by_name(phpws: Any, running: list[Any]) -> None:
    url = f"ws://127.0.0.1:{phpws.port}/php"
    receiver = running("phpws_receiver.py", url, "--name", "inbox-7")
    assert receiver.line() == "listening as inbox-7"
    sender = running("phpws_sender.py", url, "--to", "inbox-7", "hello", "how are you", "bye")
    assert sender.wait() == 0, sender.stderr()
    assert [receiver.line() for _ in range(3)] == ["hello", "how are you", "bye"]
    assert receiver.wait() == 0, receiver.stderr()
