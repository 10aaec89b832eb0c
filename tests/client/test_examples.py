"""
The client examples, each run as a subprocess against ``twistd ratchetpy``:
the chat client (typing, reading, surviving a server restart), a backend
feeding one browser by uuid on a ``phpws`` route, and two scripts talking
by name (php2php).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

import pytest
from websockets.sync.client import connect as ws_connect

from ratchetpy.client.phpws import connect_php
from tests.support.paths import ROOT
from tests.support.processes import python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


def example(name: str, *args: str, stdin: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / name), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=python_path_env(),
    )


def read_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().rstrip("\n")


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
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
        client = example("chat_client.py", url, stdin=subprocess.PIPE)
        running.append(client)
        assert read_line(client.stdout) == "connected"
        client.stdin.write("hello from the example\n")
        client.stdin.flush()
        assert other.recv(timeout=seconds(20)) == "hello from the example"
        other.send("hi back")
        assert read_line(client.stdout) == "hi back"

    server.kill()
    assert read_line(client.stdout) == "disconnected"
    restarted = twistd("--route", "/chat=examples.chat:Chat", port=server.port)
    restarted.wait_listening()
    assert read_line(client.stdout) == "connected"
    with ws_connect(url, open_timeout=seconds(10)) as other:
        client.stdin.write("after the restart\n")
        client.stdin.flush()
        assert other.recv(timeout=seconds(20)) == "after the restart"
    client.stdin.close()
    assert client.wait(timeout=seconds(30)) == 0


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
        feed = example(
            "phpws_feed.py", f"ws://127.0.0.1:{phpws.port}/php", first_uuid,
            "--steps", "2", "--pause", "0",
        )
        running.append(feed)
        got = [json.loads(first.recv(timeout=seconds(20))) for _ in range(3)]
        assert [p["message"] for p in got] == ["step 1 of 2 done", "step 2 of 2 done", "done"]
        assert all(p["opcode"] == "feedback" and p["uuid"] == first_uuid for p in got)
        assert feed.wait(timeout=seconds(30)) == 0, feed.stderr.read()
        # the other browser got none of it: a marker sent now is the next thing it sees
        with connect_php(f"ws://127.0.0.1:{phpws.port}/php") as php:
            php.feedback("marker", uuid=second_uuid)
        assert json.loads(second.recv(timeout=seconds(20)))["message"] == "marker"


def test_two_scripts_talk_by_name(phpws: Any, running: list[Any]) -> None:
    url = f"ws://127.0.0.1:{phpws.port}/php"
    receiver = example("phpws_receiver.py", url, "--name", "inbox-7")
    running.append(receiver)
    assert read_line(receiver.stdout) == "listening as inbox-7"
    sender = example("phpws_sender.py", url, "--to", "inbox-7", "hello", "how are you", "bye")
    running.append(sender)
    assert sender.wait(timeout=seconds(30)) == 0, sender.stderr.read()
    assert [read_line(receiver.stdout) for _ in range(3)] == ["hello", "how are you", "bye"]
    assert receiver.wait(timeout=seconds(30)) == 0, receiver.stderr.read()
