"""
``python -m ratchetpy.client`` as a subprocess against a ratchetpy App run
by the test's reactor: one-shot and interactive use, and each exit code.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest

from ratchetpy.app import App
from ratchetpy.interfaces import MessageComponentInterface
from ratchetpy.server.echo import EchoServer
from ratchetpy.server.tls import tls_options
from tests.support import autobahn_server, components
from tests.support.paths import ROOT
from tests.support.processes import python_path_env
from tests.support.timing import seconds
from tests.support.tls import self_signed


class Quiet(MessageComponentInterface):
    """Never answers; closes with 4001 when told "close"."""

    def on_open(self, conn: Any) -> None:
        pass

    def on_message(self, conn: Any, msg: Any) -> None:
        if msg == "close":
            conn.close(4001, "told to")

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


class Binary(components.Quiet):
    def on_open(self, conn: Any) -> None:
        conn.send(b"\x00\x01\xfe")


class Sub(EchoServer):
    def get_sub_protocols(self) -> list[str]:
        return ["chat.v1"]


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratchetpy.client", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=python_path_env(),
        timeout=seconds(60),
    )


@pytest.mark.slow
class CommandLine(unittest.TestCase):
    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/echo", EchoServer(), ["*"])
        self.app.route("/quiet", Quiet(), ["*"])
        self.app.route("/binary", Binary(), ["*"])
        self.app.route("/sub", Sub(), ["*"])
        self.app.route("/strict", EchoServer(), ["allowed.example"])
        self.app.privilegedStartService()
        self.app.startService()
        self.base = f"ws://127.0.0.1:{self.app.servers[0].port.getHost().port}"
        self.addCleanup(self.app.stopService)

    def cli(self, *args: str, stdin: str = "") -> defer.Deferred[subprocess.CompletedProcess[str]]:
        return threads.deferToThread(run_cli, *args, stdin=stdin)

    @defer.inlineCallbacks
    def test_one_shot_send_and_expect_reply(self):
        done = yield self.cli(f"{self.base}/echo", "--send", "ping me", "--expect-reply")
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "ping me\n", ""))

    @defer.inlineCallbacks
    def test_one_shot_without_reply_and_with_headers_origin_subprotocol(self):
        done = yield self.cli(
            f"{self.base}/sub", "-s", "chat.v1", "-H", "X-Token: 1", "--origin",
            "http://allowed.example", "--send", "x",
        )
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        done = yield self.cli(
            f"{self.base}/strict", "--origin", "http://allowed.example", "--send", "y",
            "--expect-reply",
        )
        self.assertEqual(done.stdout, "y\n")

    @defer.inlineCallbacks
    def test_interactive_lines_out_messages_in(self):
        done = yield self.cli(f"{self.base}/echo", stdin="first\nsecond\n")
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "first\nsecond\n", ""))

    @defer.inlineCallbacks
    def test_binary_messages_print_as_base64(self):
        done = yield self.cli(f"{self.base}/binary", "--send", "x", "--expect-reply")
        self.assertEqual(done.stdout, "base64:AAH+\n")

    @defer.inlineCallbacks
    def test_exit_1_for_a_refusal_with_one_line(self):
        done = yield self.cli(f"{self.base}/nowhere", "--send", "x")
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.splitlines()), 1)
        self.assertIn("404", done.stderr)
        self.assertTrue(done.stderr.startswith("ratchetpy.client: "))
        done = yield self.cli(f"{self.base}/strict", "--origin", "http://evil.example", "--send", "x")
        self.assertEqual(done.returncode, 1)
        self.assertIn("403", done.stderr)

    @defer.inlineCallbacks
    def test_exit_1_when_nothing_listens(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            done = yield self.cli(f"ws://127.0.0.1:{port}/", "--send", "x")
        self.assertEqual(done.returncode, 1)
        self.assertIn("connection refused", done.stderr)

    @defer.inlineCallbacks
    def test_exit_3_when_no_reply_comes(self):
        done = yield self.cli(
            f"{self.base}/quiet", "--send", "x", "--expect-reply", "--timeout", "0.3"
        )
        self.assertEqual((done.returncode, done.stdout), (3, ""))
        self.assertEqual(done.stderr, "ratchetpy.client: no reply within 0.3 s\n")

    @defer.inlineCallbacks
    def test_exit_4_when_the_server_closes(self):
        done = yield self.cli(f"{self.base}/quiet", "--send", "close", "--expect-reply")
        self.assertEqual(done.returncode, 4)
        self.assertIn("4001 told to", done.stderr)

        def interactive() -> tuple[int, str]:
            # stdin stays open: the server's close, not the end of input, ends it
            process = subprocess.Popen(
                [sys.executable, "-m", "ratchetpy.client", f"{self.base}/quiet"],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=python_path_env(),
            )
            assert process.stdin is not None and process.stderr is not None
            process.stdin.write("close\n")
            process.stdin.flush()
            try:
                code = process.wait(timeout=seconds(60))
            finally:
                process.kill()
                process.stdin.close()
            error = process.stderr.read()
            process.stderr.close()
            return code, error

        code, error = yield threads.deferToThread(interactive)
        self.assertEqual(code, 4)
        self.assertIn("4001 told to", error)

    @defer.inlineCallbacks
    def test_exit_2_for_a_bad_command_line(self):
        for args in (
            [f"{self.base}/echo", "-H", "no colon"],
            [f"{self.base}/echo", "--expect-reply"],
            ["http://127.0.0.1/", "--send", "x"],
            [f"{self.base}/echo", "--timeout", "0", "--send", "x"],
        ):
            done = yield self.cli(*args)
            self.assertEqual(done.returncode, 2, args)
            self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
            self.assertTrue(done.stderr.startswith("ratchetpy.client: "), done.stderr)


@pytest.mark.slow
class CommandLineTls(unittest.TestCase):
    """``--ca`` and ``--insecure`` against a plain Autobahn echo server behind TLS."""

    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        directory = Path(self.mktemp())
        directory.mkdir()
        self.cert, key = self_signed(directory, host="localhost")
        listening = reactor.listenSSL(
            0,
            autobahn_server.echo_factory(reactor),
            tls_options(self.cert, key),
            interface="127.0.0.1",
        )
        self.addCleanup(listening.stopListening)
        self.url = f"wss://127.0.0.1:{listening.getHost().port}/"

    @defer.inlineCallbacks
    def test_trust_flags(self):
        done = yield threads.deferToThread(
            run_cli, self.url, "--ca", self.cert, "--send", "tls", "--expect-reply"
        )
        self.assertEqual((done.returncode, done.stdout), (0, "tls\n"))
        done = yield threads.deferToThread(run_cli, self.url, "-k", "--send", "x")
        self.assertEqual(done.returncode, 0, done.stderr)
        done = yield threads.deferToThread(run_cli, self.url, "--send", "x")
        self.assertEqual(done.returncode, 1)
        self.assertIn("not trusted", done.stderr)
        done = yield threads.deferToThread(run_cli, self.url, "--ca", self.cert + ".missing", "--send", "x")
        self.assertEqual(done.returncode, 2)
        self.assertIn("ca_file", done.stderr)


class InProcess(unittest.TestCase):
    """``cli.main()`` called in a thread (fast), with its streams in memory."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/echo", EchoServer(), ["*"])
        self.app.route("/quiet", Quiet(), ["*"])
        self.app.privilegedStartService()
        self.app.startService()
        self.addCleanup(self.app.stopService)
        self.base = f"ws://127.0.0.1:{self.app.servers[0].port.getHost().port}"

    def main(self, *args: str, stdin: str = "") -> defer.Deferred[tuple[int, str, str]]:
        from ratchetpy.client.cli import main

        def run() -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            code = main(list(args), io.StringIO(stdin), out, err)
            return code, out.getvalue(), err.getvalue()

        return threads.deferToThread(run)

    @defer.inlineCallbacks
    def test_one_shot_and_interactive(self):
        result = yield self.main(f"{self.base}/echo", "--send", "x", "--expect-reply")
        self.assertEqual(result, (0, "x\n", ""))
        result = yield self.main(f"{self.base}/echo", stdin="a\nb\n")
        self.assertEqual(result, (0, "a\nb\n", ""))

    @defer.inlineCallbacks
    def test_exit_codes(self):
        code, _, err = yield self.main(f"{self.base}/nowhere", "--send", "x")
        self.assertEqual(code, 1)
        self.assertIn("404", err)
        code, _, err = yield self.main(f"{self.base}/quiet", "--send", "x", "--expect-reply", "--timeout", "0.2")
        self.assertEqual((code, err), (3, "ratchetpy.client: no reply within 0.2 s\n"))
        code, _, err = yield self.main(f"{self.base}/quiet", "--send", "close", "--expect-reply")
        self.assertEqual(code, 4)
        code, _, err = yield self.main(f"{self.base}/echo", "--expect-reply")
        self.assertEqual(code, 2)
