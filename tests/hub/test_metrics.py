"""The Prometheus collector and the metrics controller, in memory (real scrapes: tests/integration/test_metrics_loopback.py)."""

from __future__ import annotations

import sys

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactor

from ratchetpy import App, EchoServer
from ratchetpy.exceptions import ConfigurationError, MetricsUnavailable
from ratchetpy.hub import Hub, ServerStats, Traffic
from ratchetpy.hub.metrics import MetricsController, StatsCollector, metrics_registry
from tests.support.memory import http_exchange, open_memory


class Source:
    """A connection's traffic counters, as a WebSocket protocol exposes them."""

    def __init__(self, *counts: int) -> None:
        self.counts = Traffic(*counts)

    def traffic(self) -> Traffic:
        return self.counts


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client, by name and labels."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


def busy_stats() -> tuple[ServerStats, Source]:
    stats = ServerStats()
    gone, live = Source(3, 100, 4, 120), Source(1, 10, 2, 20)
    stats.connection_opened(gone)
    stats.connection_opened(live)
    stats.connection_closed(gone, 4000)
    stats.refusal(404)
    stats.refusal(404)
    stats.refusal(503, "max_connections")
    stats.backpressure_event("drop")
    stats.pushed(delivered=2, missed=1)
    stats.api_request(202)
    stats.api_request(401)
    return stats, live


def test_collector_exposes_every_counter():
    """Each ServerStats counter becomes a series with Prometheus names and labels."""
    stats, _ = busy_stats()
    parsed = samples(generate_latest(metrics_registry(stats, process=False)))
    assert value(parsed, "ratchetpy_connections_open") == 1
    assert value(parsed, "ratchetpy_connections_accepted_total") == 2
    assert value(parsed, "ratchetpy_connections_closed_total", code="4000") == 1
    assert value(parsed, "ratchetpy_messages_received_total") == 4
    assert value(parsed, "ratchetpy_messages_sent_total") == 6
    assert value(parsed, "ratchetpy_received_bytes_total") == 110
    assert value(parsed, "ratchetpy_sent_bytes_total") == 140
    assert value(parsed, "ratchetpy_handshakes_refused_total", status="404", reason="not_found") == 2
    assert value(parsed, "ratchetpy_handshakes_refused_total", status="503", reason="max_connections") == 1
    assert value(parsed, "ratchetpy_backpressure_events_total", policy="drop") == 1
    assert value(parsed, "ratchetpy_backpressure_events_total", policy="close") == 0
    assert value(parsed, "ratchetpy_hub_pushes_total", result="delivered") == 2
    assert value(parsed, "ratchetpy_hub_pushes_total", result="missed") == 1
    assert value(parsed, "ratchetpy_publish_api_requests_total", status="202") == 1
    assert value(parsed, "ratchetpy_publish_api_requests_total", status="401") == 1
    assert ("ratchetpy_hub_channels", ()) not in parsed  # no hub given
    assert not any(name.startswith("process_") for name, _ in parsed)


def test_families_have_their_types():
    """Counters are counters (``_total``), open connections a gauge."""
    stats, _ = busy_stats()
    text = generate_latest(metrics_registry(stats, process=False)).decode()
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["ratchetpy_connections_open"] == "gauge"
    assert types["ratchetpy_connections_accepted"] == "counter"
    assert types["ratchetpy_received_bytes"] == "counter"
    assert types["ratchetpy_build_info"] == "gauge"  # an info family, in the text format


def test_values_are_read_at_each_scrape():
    """Nothing is cached: a scrape shows the counters as they are then."""
    stats, live = busy_stats()
    registry = metrics_registry(stats, process=False)
    before = samples(generate_latest(registry))
    live.counts = Traffic(9, 90, 2, 20)
    stats.connection_closed(live, 1006)
    stats.refusal(404)
    after = samples(generate_latest(registry))
    assert value(before, "ratchetpy_connections_open") == 1
    assert value(after, "ratchetpy_connections_open") == 0
    assert value(after, "ratchetpy_connections_closed_total", code="1006") == 1
    assert value(after, "ratchetpy_messages_received_total") == 12
    assert value(after, "ratchetpy_handshakes_refused_total", status="404", reason="not_found") == 3


def test_hub_gauges_and_process_metrics():
    """With a hub: registered connections and channels; by default the process metrics too."""
    hub = Hub()
    peer = open_memory(hub=hub, register=True)
    hub.join(peer.conn, "room")
    parsed = samples(generate_latest(metrics_registry(hub.counters, hub)))
    assert value(parsed, "ratchetpy_hub_registered_connections") == 1
    assert value(parsed, "ratchetpy_hub_channels") == 1
    assert value(parsed, "ratchetpy_connections_open") == 1
    assert ("process_open_fds", ()) in parsed


def test_backplane_series_only_with_a_backplane():
    """A hub with a Redis backplane also shows its events and its Redis connections."""
    from ratchetpy.hub.redis_backplane import RedisBackplane

    hub = Hub()
    names = lambda: {name for name, _ in samples(generate_latest(metrics_registry(hub.counters, hub)))}  # noqa: E731
    assert not any(n.startswith(("ratchetpy_backplane", "ratchetpy_redis")) for n in names())
    backplane = RedisBackplane(hub, "redis://127.0.0.1:1/0", MemoryReactor())  # never started
    backplane.counters["failures"] += 3
    backplane.client.stats.timeouts += 2
    parsed = samples(generate_latest(metrics_registry(hub.counters, hub)))
    assert value(parsed, "ratchetpy_backplane_events_total", event="failures") == 3
    assert value(parsed, "ratchetpy_backplane_events_total", event="malformed") == 0
    assert value(parsed, "ratchetpy_redis_commands_total", role="commands", outcome="timeouts") == 2
    assert value(parsed, "ratchetpy_redis_connected", role="pubsub") == 0


def test_registries_are_per_server():
    """Two Apps in one process each expose their own counters; the global registry is untouched."""
    first, second = App("*", 0, reactor=MemoryReactor()), App("*", 0, reactor=MemoryReactor())
    first.hub.counters.refusal(404)
    assert first.metrics_registry is first.metrics_registry
    assert first.metrics_registry is not second.metrics_registry
    one = samples(generate_latest(first.metrics_registry))
    two = samples(generate_latest(second.metrics_registry))
    assert value(one, "ratchetpy_handshakes_refused_total", status="404", reason="not_found") == 1
    assert not any(name == "ratchetpy_handshakes_refused_total" for name, _ in two)
    assert not any(name.startswith("ratchetpy_") for name, _ in samples(generate_latest(REGISTRY)))


def test_describe_gives_names_without_reading():
    """Registration checks names through describe(), which reads no counter."""

    class Exploding(ServerStats):
        def traffic(self) -> Traffic:
            raise AssertionError("read at registration")

    collector = StatsCollector(Exploding())
    names = {m.name for m in collector.describe()}
    assert "ratchetpy_connections_accepted" in names and all(not m.samples for m in collector.describe())
    from prometheus_client.registry import CollectorRegistry

    CollectorRegistry().register(collector)


def app_with_metrics(**kwargs):
    app = App("localhost", 0, reactor=MemoryReactor())
    app.route("/echo", EchoServer(), ["*"])
    controller = app.metrics(**kwargs)
    return app, controller


def request(router, head: str) -> tuple[str, dict[str, str], bytes]:
    raw, _ = http_exchange(router, head.replace("\n", "\r\n").encode() + b"\r\n")
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status, *fields = head_bytes.decode().split("\r\n")
    headers = dict(f.split(": ", 1) for f in fields)
    return status, headers, body


def test_route_answers_get_with_text_format():
    """GET /metrics on the App's router: 200, Prometheus text, any Host by default."""
    app, _ = app_with_metrics()
    app.hub.counters.refusal(403)
    status, headers, body = request(app.router, "GET /metrics HTTP/1.1\nHost: 10.0.0.1:9100\n")
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert int(headers["Content-Length"]) == len(body)
    parsed = samples(body)
    assert value(parsed, "ratchetpy_handshakes_refused_total", status="403", reason="forbidden") == 1


def test_head_openmetrics_and_name_filter():
    """HEAD has the head only; Accept picks OpenMetrics; name[] restricts the series."""
    app, _ = app_with_metrics()
    status, headers, body = request(app.router, "HEAD /metrics HTTP/1.1\nHost: x\n")
    assert status == "HTTP/1.1 200 OK" and body == b"" and int(headers["Content-Length"]) > 100
    status, headers, body = request(
        app.router,
        "GET /metrics?name[]=ratchetpy_connections_open&name[]=ratchetpy_connections_accepted_total "
        "HTTP/1.1\nHost: x\nAccept: application/openmetrics-text; version=1.0.0\n",
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    names = {line.split()[0] for line in body.decode().splitlines() if not line.startswith("#")}
    assert names == {"ratchetpy_connections_open", "ratchetpy_connections_accepted_total"}


def test_other_methods_get_405():
    """The route takes GET and HEAD; POST gets 405 with Allow (and counts as a refusal)."""
    app, controller = app_with_metrics()
    status, headers, _ = request(app.router, "POST /metrics HTTP/1.1\nHost: x\nContent-Length: 0\n")
    assert status == "HTTP/1.1 405 Method Not Allowed" and headers["Allow"] == "GET, HEAD"
    # The controller refuses on its own too, when routed without a method rule.
    from ratchetpy.http.router import Router

    router = Router()
    router.add("/m", controller, methods=())
    status, headers, body = request(router, "DELETE /m HTTP/1.1\nHost: x\n")
    assert status == "HTTP/1.1 405 Method Not Allowed" and headers["Allow"] == "GET, HEAD"
    assert b"GET" in body


def test_host_rule_and_bad_paths():
    """http_host=None keeps the App's Host rule; a path with parameters is refused."""
    app, _ = app_with_metrics(path="/stats", http_host=None)
    assert request(app.router, "GET /stats HTTP/1.1\nHost: 10.0.0.1\n")[0] == "HTTP/1.1 404 Not Found"
    assert request(app.router, "GET /stats HTTP/1.1\nHost: localhost:8080\n")[0] == "HTTP/1.1 200 OK"
    for bad in ("metrics", "/m/{x}", "/m?x", "/a b"):
        with pytest.raises(ConfigurationError, match="metrics path"):
            app.metrics(bad)
    with pytest.raises(ConfigurationError, match="the route /stats serves it"):
        app.metrics("/stats")
    app.route("/room/{name}", EchoServer(), ["*"])
    with pytest.raises(ConfigurationError, match="the route /room/{name} serves it"):
        app.metrics("/room/metrics")


def test_a_failing_collector_gives_500():
    """A collector that raises costs that scrape a 500 and a log line, nothing else."""
    from prometheus_client.registry import CollectorRegistry

    class Broken:
        def collect(self):
            raise RuntimeError("boom")

    registry = CollectorRegistry()
    registry.register(Broken())
    from ratchetpy.http.router import Router

    router = Router()
    router.add("/metrics", MetricsController(registry))
    status, _, body = request(router, "GET /metrics HTTP/1.1\nHost: x\n")
    assert status == "HTTP/1.1 500 Internal Server Error" and b"failed" in body


def hide_prometheus(monkeypatch):
    for name in [n for n in sys.modules if n == "prometheus_client" or n.startswith("prometheus_client.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "ratchetpy.hub.metrics", raising=False)


def test_without_prometheus_client_the_error_names_the_extra(monkeypatch):
    """No prometheus-client: App.metrics raises MetricsUnavailable naming the pip command."""
    hide_prometheus(monkeypatch)
    app = App("*", 0, reactor=MemoryReactor())
    with pytest.raises(MetricsUnavailable, match=r"pip install 'ratchetpy\[metrics\]'"):
        app.metrics()
    with pytest.raises(ImportError):
        app.metrics_listen("tcp:0")
    assert app.metrics_servers == [] and app.router.routes == []
