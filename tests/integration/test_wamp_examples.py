"""
The WAMP examples run and behave as their PHP originals: ``pubsub.py``
(socketo.me's BasicPubSub) and the Push tutorial (``push_server.py`` fed by
``push_client.py`` from another process).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import pytest
from twisted.internet import task, threads
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from ratchetpy.wamp import WampServer
from tests.support.paths import EXAMPLES
from tests.support.processes import free_port, python_path_env
from tests.support.timing import seconds
from tests.support.wamp import LoopbackMixin
from tests.support.wamp_client import WampClient

ENV = python_path_env()


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def wait_until(predicate: Any) -> None:
    from twisted.internet import reactor

    deadline = reactor.seconds() + seconds(10)
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("condition not reached in time")
        await task.deferLater(reactor, 0.01, lambda: None)


def pubsub_session(url: str) -> dict[str, Any]:
    with WampClient(url) as a, WampClient(url) as b:
        for client in (a, b):
            client.send([5, "kittensCategory"])
            assert client.barrier() == []
        a.send([7, "kittensCategory", {"title": "to all"}])
        a.send([7, "kittensCategory", {"title": "not to me"}, True])
        return {
            "a": a.barrier(),
            "b": b.barrier(),
            "call": a.call("c1", "http://example.com/rpc", 1),
        }


class PubSubExampleTests(LoopbackMixin, unittest.TestCase):
    timeout = 30

    async def test_pubsub(self) -> None:
        """BasicPubSub relays publishes (honouring excludeMe) and refuses RPC."""
        example = load_example("pubsub")
        url = await self.serve(WampServer(example.BasicPubSub()))
        got = await threads.deferToThread(pubsub_session, url)
        self.assertEqual([json.loads(m) for m in got["a"]],
                         [[8, "kittensCategory", {"title": "to all"}]])
        self.assertEqual([json.loads(m) for m in got["b"]],
                         [[8, "kittensCategory", {"title": "to all"}],
                          [8, "kittensCategory", {"title": "not to me"}]])
        self.assertEqual(got["call"],
                         [4, "c1", "http://example.com/rpc", "RPC not supported on this demo"])


class PushExampleTests(LoopbackMixin, unittest.TestCase):
    timeout = 30

    async def test_entry_pushed_from_another_process_reaches_subscribers(self) -> None:
        """A blog entry POSTed by push_client.py (a separate process) arrives as an EVENT."""
        from twisted.internet import reactor

        example = load_example("push_server")
        pusher = example.Pusher()
        url = await self.serve(WampServer(pusher))
        push_port = example.listen_for_entries(pusher, reactor, 0)
        self.addCleanup(push_port.stopListening)
        push_url = f"http://127.0.0.1:{push_port.getHost().port}/"

        client = await threads.deferToThread(WampClient, url)
        self.addCleanup(threads.deferToThread, client.close)
        await threads.deferToThread(client.send, [5, "kittensCategory"])
        await wait_until(lambda: "kittensCategory" in pusher.subscribed_topics)

        async def push(category: str, title: str) -> Any:
            out, err, code = await getProcessOutputAndValue(
                sys.executable,
                [str(EXAMPLES / "push_client.py"), "--url", push_url,
                 "--category", category, "--title", title, "--article", "a/b ü"],
                env=ENV,
            )
            self.assertEqual(code, 0, err)
            return json.loads(out)

        self.assertEqual(await push("dogsCategory", "Dogs"), {"delivered": 0})
        self.assertEqual(await push("kittensCategory", "Kittens!"), {"delivered": 1})
        event = json.loads(await threads.deferToThread(client.recv))
        self.assertEqual(event[:2], [8, "kittensCategory"])
        self.assertEqual({k: event[2][k] for k in ("category", "title", "article")},
                         {"category": "kittensCategory", "title": "Kittens!", "article": "a/b ü"})

    async def test_bad_push_is_refused_with_400(self) -> None:
        """A push without a category gets 400 and a message; nothing is broadcast."""
        from twisted.internet import reactor

        example = load_example("push_server")
        push_port = example.listen_for_entries(example.Pusher(), reactor, 0)
        self.addCleanup(push_port.stopListening)
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-c", "import sys, urllib.request, urllib.error\n"
                   "try:\n urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b'{}', method='POST'))\n"
                   "except urllib.error.HTTPError as e: print(e.code, e.read().decode())",
             f"http://127.0.0.1:{push_port.getHost().port}/"],
            env=ENV,
        )
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith(b"400 "), out)
        self.assertIn(b"category", out)

    async def test_clients_may_not_call_or_publish(self) -> None:
        """The Pusher answers a CALL with an error and closes; a PUBLISH just closes."""
        example = load_example("push_server")
        url = await self.serve(WampServer(example.Pusher()))

        def misbehave() -> tuple[Any, Any, Any]:
            with WampClient(url) as a, WampClient(url) as b:
                reply = a.call("c1", "kittensCategory")
                closed_a = a.expect_close()
                b.send([7, "kittensCategory", "spam"])
                return reply, closed_a, b.expect_close()

        reply, closed_a, closed_b = await threads.deferToThread(misbehave)
        self.assertEqual(reply, [4, "c1", "kittensCategory", "You are not allowed to make calls"])
        self.assertEqual((closed_a, closed_b), ((1000, ""), (1000, "")))


# -- the examples as real processes ---------------------------------------------


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _connect(url: str, proc: subprocess.Popen[bytes]) -> WampClient:
    deadline = time.monotonic() + seconds(15)
    while True:
        try:
            return WampClient(url)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=seconds(10))
    return out.decode(errors="replace")


@pytest.mark.slow
def test_pubsub_example_runs() -> None:
    """``python examples/pubsub.py PORT`` serves BasicPubSub."""
    port = free_port()
    proc = _start(str(EXAMPLES / "pubsub.py"), str(port))
    try:
        client = _connect(f"ws://127.0.0.1:{port}", proc)
        with client:
            assert client.welcome[3] == "Ratchet/0.4.4"
            client.send([5, "t"])
            assert client.exchange([7, "t", "hello"]) == ['[8,"t","hello"]']
    finally:
        output = _stop(proc)
    assert "Listening on" in output


@pytest.mark.slow
def test_push_example_runs() -> None:
    """``push_server.py`` in one process, ``push_client.py`` in another, a WAMP client in this one."""
    ws_port, push_port = free_port(), free_port()
    proc = _start(str(EXAMPLES / "push_server.py"), str(ws_port), str(push_port))
    try:
        with _connect(f"ws://127.0.0.1:{ws_port}", proc) as client:
            client.send([5, "kittensCategory"])
            push = [str(EXAMPLES / "push_client.py"), "--url", f"http://127.0.0.1:{push_port}/",
                    "--category", "kittensCategory", "--title", "Kittens!"]
            # The SUBSCRIBE has no reply; push until the server reports a delivery.
            deadline = time.monotonic() + seconds(15)
            while True:
                out = subprocess.run([sys.executable, *push], env=ENV, capture_output=True,
                                     check=True, timeout=seconds(15)).stdout
                if json.loads(out) == {"delivered": 1} or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert json.loads(out) == {"delivered": 1}
            event = json.loads(client.recv())
            assert event[:2] == [8, "kittensCategory"] and event[2]["title"] == "Kittens!"
    finally:
        _stop(proc)
