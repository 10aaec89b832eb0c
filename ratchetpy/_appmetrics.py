# -*- test-case-name: tests.hub.test_metrics -*-
"""
``App``'s Prometheus metrics: ``app.metrics("/metrics")`` beside the
routes, ``app.metrics_listen("tcp:9100:interface=127.0.0.1")`` on a port
of their own, and ``app.metrics_registry`` to add your own collectors.
``App`` inherits them from ``AppMetrics``; the metrics themselves are
``ratchetpy.hub.metrics`` (needs ``ratchetpy[metrics]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from .exceptions import ConfigurationError
from .http.router import Router
from .hub import Hub
from .server.io import IoServer

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from .hub.metrics import MetricsController

__all__ = ["AppMetrics"]

_log = Logger(namespace="ratchetpy.app")


class AppMetrics:
    """
    The metrics methods of ``App`` (a mixin: it uses the App's hub,
    router, reactor and listeners).
    """

    hub: Hub
    router: Router
    http_host: str
    reactor: Any
    running: int
    metrics_servers: list[IoServer]
    _metrics_registry: CollectorRegistry | None

    def _listen_failed(self, failure: Failure, server: IoServer) -> None:
        raise NotImplementedError  # App's

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """
        The Prometheus registry of this App (created on first use): its
        hub's counters plus the process metrics. Register your own
        collectors or metrics here to serve them with the App's.

        Raises:
            MetricsUnavailable: prometheus-client is not installed.
        """
        if self._metrics_registry is None:
            from .hub.metrics import metrics_registry

            self._metrics_registry = metrics_registry(self.hub.counters, self.hub)
        return self._metrics_registry

    def metrics(self, path: str = "/metrics", *, http_host: str | None = "*") -> MetricsController:
        """
        Serve Prometheus metrics at ``path`` on the App's own endpoints:
        ``GET`` and ``HEAD`` (others get 405), no ``Origin`` check (scrapers
        send none). Anyone reaching the port can read them; on a public
        port prefer ``metrics_listen`` on a private address.

        Args:
            path: a literal path, e.g. ``/metrics``.
            http_host: the Host answered: any by default (a scraper sends
                its target's name); ``None``: the App's ``http_host``.

        Raises:
            MetricsUnavailable: prometheus-client is not installed.
            ConfigurationError: ``path`` is not a plain path, or routed already.
        """
        from .hub.metrics import MetricsController, check_path

        taken = [r.path for r in self.router.routes if r.match_path(check_path(path)) is not None]
        if taken:
            raise ConfigurationError(f"cannot serve metrics at {path}: the route {taken[0]} serves it")
        controller = MetricsController(self.metrics_registry)
        host = self.http_host if http_host is None else http_host.lower()
        self.router.add(path, controller, methods=("GET", "HEAD"), host=host)
        _log.info("Metrics at {path} (Host {host})", path=path, host="any" if host == "*" else host)
        return controller

    def metrics_listen(
        self, endpoint: str | IStreamServerEndpoint, path: str = "/metrics"
    ) -> IoServer:
        """
        Serve Prometheus metrics, and nothing else, at ``path`` on
        ``endpoint`` (e.g. ``"tcp:9100:interface=127.0.0.1"``). The
        listener starts and stops with the App (failing to bind raises
        ``ListenError`` as the App's own endpoints do); added to a running
        App, it listens at once. Returns its ``IoServer``.

        Raises:
            MetricsUnavailable: prometheus-client is not installed.
            ConfigurationError: a bad endpoint description or path.
        """
        from .hub.metrics import metrics_server

        server = metrics_server(self.metrics_registry, endpoint, self.reactor, path=path)
        self.metrics_servers.append(server)
        if self.running:
            server.listen().addErrback(self._listen_failed, server)
        return server
