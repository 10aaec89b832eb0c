"""Prometheus metrics scraped over loopback after real WebSocket traffic, on the App's port and on a listener of their own."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ratchetpy import App, EchoServer
from ratchetpy.exceptions import ListenError
from tests.support.loopback import start_app
from tests.support.processes import free_port
from tests.support.timing import seconds


def scrape(url: str) -> tuple[dict, str]:
    """GET ``url``: its samples parsed by prometheus_client, and the Content-Type."""
    with urllib.request.urlopen(url, timeout=seconds(5)) as response:
        text = response.read().decode()
        content_type = response.headers["Content-Type"]
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return parsed, content_type


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, tuple(sorted(labels.items()))))


def scrape_until(url: str, done) -> dict:
    """Scrape until ``done(parsed)`` (the server may still be closing a connection); bounded."""
    deadline = time.monotonic() + seconds(10)
    while True:
        parsed, _ = scrape(url)
        if done(parsed) or time.monotonic() > deadline:
            return parsed
        time.sleep(0.05)


def http_status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=seconds(5)) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class MetricsLoopbackTests(unittest.TestCase):
    """An App with /echo, metrics at /metrics and on a second port; clients in threads."""

    timeout = 30

    def setUp(self):
        from twisted.internet import reactor

        self.app = App("localhost", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/echo", EchoServer(), ["*"])
        self.app.metrics("/metrics")
        self.metrics_port = free_port()
        self.app.metrics_listen(f"tcp:{self.metrics_port}:interface=127.0.0.1")
        self.port = start_app(self, self.app)

    @defer.inlineCallbacks
    def test_scrape_after_traffic_refusal_and_close(self):
        """Messages, bytes, a close with 4000 and a 404 show in a scrape parsed by prometheus_client."""
        base = f"localhost:{self.port}"

        def traffic():
            with connect(f"ws://{base}/echo", open_timeout=seconds(5)) as ws:
                ws.send("hello")
                assert ws.recv(timeout=seconds(5)) == "hello"
                ws.send(b"\x00\x01\x02")
                assert ws.recv(timeout=seconds(5)) == b"\x00\x01\x02"
                ws.close(4000, "done")
            try:
                connect(f"ws://{base}/nope", open_timeout=seconds(5)).close()
            except InvalidStatus as exc:
                refused = exc.response.status_code
            # Any Host for the metrics route (the App's is "localhost").
            url = f"http://127.0.0.1:{self.port}/metrics"
            parsed = scrape_until(
                url, lambda p: value(p, "ratchetpy_connections_closed_total", code="4000") == 1
            )
            return refused, parsed, scrape(url)[1]

        refused, parsed, content_type = yield threads.deferToThread(traffic)
        self.assertEqual(refused, 404)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(value(parsed, "ratchetpy_connections_accepted_total"), 1)
        self.assertEqual(value(parsed, "ratchetpy_connections_closed_total", code="4000"), 1)
        self.assertEqual(value(parsed, "ratchetpy_connections_open"), 0)
        self.assertEqual(value(parsed, "ratchetpy_messages_received_total"), 2)
        self.assertEqual(value(parsed, "ratchetpy_messages_sent_total"), 2)
        # Frames on the wire: client frames are masked (6-byte headers), the
        # server's are not (2 bytes); the close frames carry 4000 + "done".
        self.assertEqual(value(parsed, "ratchetpy_received_bytes_total"), (6 + 5) + (6 + 3) + (6 + 6))
        self.assertEqual(value(parsed, "ratchetpy_sent_bytes_total"), (2 + 5) + (2 + 3) + (2 + 6))
        self.assertEqual(
            value(parsed, "ratchetpy_handshakes_refused_total", status="404", reason="not_found"), 1
        )
        self.assertEqual(value(parsed, "ratchetpy_hub_pushes_total", result="missed"), 0)
        self.assertIsNotNone(value(parsed, "process_open_fds"))

    @defer.inlineCallbacks
    def test_open_connections_gauge(self):
        """A connection still open counts in connections_open, on both endpoints alike."""
        base = f"127.0.0.1:{self.port}"

        def hold():
            with connect(f"ws://localhost:{self.port}/echo", open_timeout=seconds(5)) as ws:
                ws.send("x")
                ws.recv(timeout=seconds(5))
                same_port = scrape(f"http://{base}/metrics")[0]
                own_port = scrape(f"http://127.0.0.1:{self.metrics_port}/metrics")[0]
            return same_port, own_port

        same_port, own_port = yield threads.deferToThread(hold)
        for parsed in (same_port, own_port):
            self.assertEqual(value(parsed, "ratchetpy_connections_open"), 1)
            self.assertEqual(value(parsed, "ratchetpy_messages_received_total"), 1)

    @defer.inlineCallbacks
    def test_separate_listener_serves_only_metrics(self):
        """The metrics port answers /metrics (GET, HEAD), 404 elsewhere, 405 to POST, and counts none of it."""
        metrics = f"http://127.0.0.1:{self.metrics_port}"

        def probe():
            statuses = (
                http_status(f"{metrics}/metrics"),
                http_status(f"{metrics}/metrics", "HEAD"),
                http_status(f"{metrics}/"),
                http_status(f"{metrics}/echo"),
                http_status(f"{metrics}/metrics", "POST"),
            )
            return statuses, scrape(f"{metrics}/metrics")[0]

        statuses, parsed = yield threads.deferToThread(probe)
        self.assertEqual(statuses, (200, 200, 404, 404, 405))
        refused = [key for key in parsed if key[0] == "ratchetpy_handshakes_refused_total"]
        self.assertEqual(refused, [])
        self.assertEqual(value(parsed, "ratchetpy_connections_accepted_total"), 0)

    @defer.inlineCallbacks
    def test_listener_added_to_a_running_app_listens_at_once(self):
        """metrics_listen on a started App listens without a restart, at the path given."""
        port = free_port()
        self.app.metrics_listen(f"tcp:{port}:interface=127.0.0.1", path="/prom")

        def probe():
            deadline = time.monotonic() + seconds(5)
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            parsed = scrape(f"http://127.0.0.1:{port}/prom")[0]
            return parsed, http_status(f"http://127.0.0.1:{port}/metrics")

        parsed, other = yield threads.deferToThread(probe)
        self.assertEqual(value(parsed, "ratchetpy_connections_open"), 0)
        self.assertEqual(other, 404)

    @defer.inlineCallbacks
    def test_listener_stops_with_the_app(self):
        """Stopping the App closes the metrics port too."""
        yield self.app.stopService()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.metrics_port), timeout=seconds(2)).close()


class MetricsListenErrors(unittest.TestCase):
    """A metrics port that cannot be bound fails the start like the App's own ports."""

    def test_port_in_use_names_the_metrics_listener(self):
        from twisted.internet import reactor

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            app = App("*", 0, reactor=reactor)
            app.metrics_listen(f"tcp:{port}:interface=127.0.0.1")
            with self.assertRaises(ListenError) as caught:
                app.privilegedStartService()
        message = str(caught.exception)
        self.assertIn(f"tcp:{port}:interface=127.0.0.1 (metrics)", message)
        self.assertIn("--metrics-listen", message)
        self.assertIsNone(app.servers[0].port)  # the App's own port was released
