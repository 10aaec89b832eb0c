# -*- test-case-name: tests.hub.test_metrics -*-
"""
Prometheus metrics of a server, read from its ``ServerStats`` at scrape time.

.. code-block:: python

    app = App("chat.example.com", 8080)
    app.metrics("/metrics")                               # on the app's own port
    app.metrics_listen("tcp:9100:interface=127.0.0.1")    # or a port of its own

Needs ``prometheus-client`` (``pip install 'ratchetpy[metrics]'``); importing
this module without it raises ``MetricsUnavailable`` saying so.

Nothing here runs per message: ``StatsCollector`` builds the metric
families from ``hub.counters`` only when a scrape asks for them (see
``ratchetpy.hub.stats`` for how those are counted), so a server with
metrics on does the same work per message as one without. Each server
gets a ``CollectorRegistry`` of its own (``metrics_registry``), never
prometheus_client's global one, so several servers in one process (and
tests) do not clash.

The series (``_total`` are counters):

===============================================  ================  ==================================
series                                           labels            what
===============================================  ================  ==================================
``ratchetpy_connections_open``                                     WebSocket connections open now
``ratchetpy_connections_accepted_total``                           handshakes completed
``ratchetpy_connections_closed_total``           ``code``          closes by close code (1006: lost)
``ratchetpy_messages_received_total``                              messages from clients
``ratchetpy_messages_sent_total``                                  messages to clients
``ratchetpy_received_bytes_total``                                 bytes from clients (on the wire)
``ratchetpy_sent_bytes_total``                                     bytes to clients (on the wire)
``ratchetpy_handshakes_refused_total``           ``status``,       requests refused before any
                                                 ``reason``        WebSocket (404, 403, 503, ...)
``ratchetpy_backpressure_events_total``          ``policy``        send buffers over the limit
``ratchetpy_hub_pushes_total``                   ``result``        hub pushes ``delivered``/``missed``
``ratchetpy_publish_api_requests_total``         ``status``        publish API requests answered
``ratchetpy_hub_registered_connections``                           connections reachable by id
``ratchetpy_hub_channels``                                         channels with a member
``ratchetpy_build_info``                         ``version``       always 1
===============================================  ================  ==================================

plus, by default, prometheus_client's ``process_*`` (CPU, memory, open
file descriptors), ``python_gc_*`` and ``python_info``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from twisted.logger import Logger

from ..exceptions import ConfigurationError, MetricsUnavailable

try:
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        InfoMetricFamily,
        Metric,
    )
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector
    from prometheus_client.registry import CollectorRegistry
except ImportError as exc:  # pragma: no cover - exercised with the module hidden
    raise MetricsUnavailable(
        "Prometheus metrics need the prometheus-client package: "
        "pip install 'ratchetpy[metrics]'"
    ) from exc

from ..http.controllers import HttpController, HttpResponse
from ..version import __version__
from ..websocket.flow import OVERFLOW_POLICIES
from .stats import ServerStats

if TYPE_CHECKING:
    from ..http.request import Request
    from ..server.io import IoServer
    from .hub import Hub

__all__ = [
    "StatsCollector",
    "MetricsController",
    "metrics_registry",
    "metrics_server",
    "DEFAULT_METRICS_PATH",
    "PREFIX",
]

_log = Logger(namespace="ratchetpy.metrics")

PREFIX = "ratchetpy"
"""The first part of every series name this module exposes."""

DEFAULT_METRICS_PATH = "/metrics"
"""Where metrics are served unless told otherwise (Prometheus' default path)."""

# name (without prefix and _total), type, help, label names
_FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("connections_open", "gauge", "WebSocket connections open now.", ()),
    ("connections_accepted", "counter", "WebSocket connections opened (handshake completed).", ()),
    (
        "connections_closed",
        "counter",
        "WebSocket connections closed, by close code (1006: lost without a closing handshake).",
        ("code",),
    ),
    ("messages_received", "counter", "WebSocket messages received from clients.", ()),
    ("messages_sent", "counter", "WebSocket messages sent to clients.", ()),
    ("received_bytes", "counter", "Bytes received on WebSocket connections (frame headers included).", ()),
    ("sent_bytes", "counter", "Bytes sent on WebSocket connections (frame headers included).", ()),
    (
        "handshakes_refused",
        "counter",
        "Requests refused before any WebSocket opened, by HTTP status and reason.",
        ("status", "reason"),
    ),
    (
        "backpressure_events",
        "counter",
        "Clients whose send buffer went over the limit, by the policy applied.",
        ("policy",),
    ),
    ("hub_pushes", "counter", "Hub pushes to one client or user: delivered or missed.", ("result",)),
    ("publish_api_requests", "counter", "Publish API requests, by HTTP status.", ("status",)),
    ("hub_registered_connections", "gauge", "Connections registered with the hub (reachable by id).", ()),
    ("hub_channels", "gauge", "Hub channels with at least one member.", ()),
    (
        "backplane_events",
        "counter",
        "Redis backplane events: messages published, received, delivered from other nodes; "
        "failures (Redis unreachable), timeouts (answers that did not all come), malformed.",
        ("event",),
    ),
    (
        "redis_commands",
        "counter",
        "Redis commands of the backplane, by connection role and outcome.",
        ("role", "outcome"),
    ),
    ("redis_connected", "gauge", "1 while the backplane's Redis connection is usable, by role.", ("role",)),
    ("redis_outages", "counter", "Redis outages seen by the backplane, by connection role.", ("role",)),
)

_BACKPLANE_EVENTS = ("published", "received", "delivered_remote", "failures", "timeouts", "malformed")
_REDIS_OUTCOMES = ("commands", "failures", "errors", "timeouts")


def _family(name: str, kind: str, documentation: str, labels: Sequence[str]) -> Any:
    full = f"{PREFIX}_{name}"
    if kind == "counter":
        return CounterMetricFamily(full, documentation, labels=labels)
    return GaugeMetricFamily(full, documentation, labels=labels)


class StatsCollector:
    """
    A prometheus_client collector for one server's ``ServerStats``.

    Register it with a ``CollectorRegistry``; every scrape reads the
    counters afresh. Reading costs one pass over the open connections
    (their traffic counters) and nothing between scrapes.

    Args:
        stats: the counters (``hub.counters``; ``App.hub.counters`` for an App).
        hub: the hub whose registered connections and channels are shown
            as gauges (optional).
    """

    def __init__(self, stats: ServerStats, hub: Hub | None = None) -> None:
        self.stats = stats
        self.hub = hub

    def _backplane(self, families: dict[str, Any]) -> None:
        # Shown only for a hub with a Redis backplane (App.use_redis, --redis).
        backplane = getattr(self.hub, "backplane", None)
        counters = getattr(backplane, "counters", None)
        if counters is None:
            for name in ("backplane_events", "redis_commands", "redis_connected", "redis_outages"):
                del families[name]
            return
        for event in sorted({*_BACKPLANE_EVENTS, *counters}):
            families["backplane_events"].add_metric([event], counters[event])
        for link in (getattr(backplane, "client", None), getattr(backplane, "subscriber", None)):
            stats = getattr(link, "stats", None)
            if stats is None:
                continue
            role = str(getattr(link, "role", "redis"))
            for outcome in _REDIS_OUTCOMES:
                families["redis_commands"].add_metric([role, outcome], getattr(stats, outcome, 0))
            families["redis_connected"].add_metric([role], stats.connected)
            families["redis_outages"].add_metric([role], stats.outages)

    def describe(self) -> list[Metric]:
        """The families ``collect`` yields, without samples (for name clash checks)."""
        families = [_family(*spec) for spec in _FAMILIES]
        families.append(InfoMetricFamily(f"{PREFIX}_build", "ratchetpy version."))
        return families

    def collect(self) -> Iterator[Metric]:
        """The families with the counters' values now."""
        stats = self.stats
        traffic = stats.traffic()
        families = {spec[0]: _family(*spec) for spec in _FAMILIES}
        families["connections_open"].add_metric([], stats.open)
        families["connections_accepted"].add_metric([], stats.accepted)
        for code, count in sorted(stats.closed.items()):
            families["connections_closed"].add_metric([str(code)], count)
        families["messages_received"].add_metric([], traffic.messages_in)
        families["messages_sent"].add_metric([], traffic.messages_out)
        families["received_bytes"].add_metric([], traffic.bytes_in)
        families["sent_bytes"].add_metric([], traffic.bytes_out)
        for (status, reason), count in sorted(stats.refusals.items()):
            families["handshakes_refused"].add_metric([str(status), reason], count)
        # Known label values are always shown, at 0 until they happen, so
        # rate() and alerts work from the first scrape.
        policies = sorted({*OVERFLOW_POLICIES, *stats.backpressure})
        for policy in policies:
            families["backpressure_events"].add_metric([policy], stats.backpressure[policy])
        for result in sorted({"delivered", "missed", *stats.pushes}):
            families["hub_pushes"].add_metric([result], stats.pushes[result])
        for status, count in sorted(stats.api_requests.items()):
            families["publish_api_requests"].add_metric([str(status)], count)
        hub = self.hub
        if hub is not None:
            families["hub_registered_connections"].add_metric([], len(hub))
            families["hub_channels"].add_metric([], len(hub.channels()))
        else:
            del families["hub_registered_connections"], families["hub_channels"]
        self._backplane(families)
        yield from families.values()
        info = InfoMetricFamily(f"{PREFIX}_build", "ratchetpy version.")
        info.add_metric([], {"version": __version__})
        yield info


def metrics_registry(
    stats: ServerStats, hub: Hub | None = None, *, process: bool = True
) -> CollectorRegistry:
    """
    A new ``CollectorRegistry`` holding a ``StatsCollector`` for ``stats``.

    Args:
        stats: the server's counters.
        hub: the hub for the hub gauges.
        process: also collect the process (CPU seconds, resident memory,
            open file descriptors), garbage collector and Python version
            metrics, as prometheus_client's default registry does.
    """
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, hub))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class MetricsController(HttpController):
    """
    Answers ``GET`` (and ``HEAD``) with the metrics of ``registry``.

    The format follows the request's ``Accept`` (Prometheus text or
    OpenMetrics, as prometheus_client's own handler chooses); repeated
    ``name[]`` query parameters restrict the answer to those series.
    Other methods get ``405`` with ``Allow: GET, HEAD``. The connection
    closes after each answer.

    Args:
        registry: what to expose (``metrics_registry(...)``).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def respond(self, request: Request) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return (
                405,
                [("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD")],
                b"Method Not Allowed: metrics are read with GET\n",
            )
        encoder, content_type = choose_encoder(request.get_header_line("Accept"))
        names = [value for key, value in parse_qsl(request.query_string) if key == "name[]"]
        source: Any = self.registry.restricted_registry(names) if names else self.registry
        try:
            body = encoder(source)
        except Exception:  # noqa: BLE001 - a collector's bug must not cost the server
            _log.failure("Collecting metrics failed")
            return 500, [("Content-Type", "text/plain; charset=utf-8")], b"collecting metrics failed\n"
        return 200, [("Content-Type", content_type), ("Cache-Control", "no-store")], body


def metrics_server(
    registry: CollectorRegistry,
    endpoint: str | Any,
    reactor: Any,
    *,
    path: str = DEFAULT_METRICS_PATH,
    shutdown_timeout: float = 1.0,
) -> IoServer:
    """
    An ``IoServer`` serving only the metrics, at ``path``, on ``endpoint``.

    Other paths get 404, other methods 405. Its refusals are not counted
    in any server's stats: scrapers and port scanners are not clients.

    Raises:
        ConfigurationError: ``endpoint`` or ``path`` cannot work.
    """
    from ..http.router import Router
    from ..http.server import HttpServer
    from ..server.io import IoServer

    router = Router()
    router.add(check_path(path), MetricsController(registry), methods=("GET", "HEAD"))
    return IoServer(HttpServer(router), endpoint, reactor, shutdown_timeout=shutdown_timeout)


def check_path(path: object) -> str:
    """``path`` as a metrics path, or ``ConfigurationError`` saying what is wrong."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"the metrics path must start with '/', e.g. /metrics, not {path!r}")
    if any(c in path for c in "{}?#") or not path.isprintable() or " " in path:
        raise ConfigurationError(
            f"the metrics path must be a plain path (no {{parameters}}, '?', '#' or spaces), not {path!r}"
        )
    return path

