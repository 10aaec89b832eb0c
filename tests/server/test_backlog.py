"""Every listening socket ratchetpy opens asks for DEFAULT_BACKLOG, not Twisted's 50."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor as global_reactor
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import TestCase

from ratchetpy import App, ConfigurationError, IoServer
from ratchetpy.server.backlog import DEFAULT_BACKLOG
from ratchetpy.tap import Options, makeService
from ratchetpy.testing import RecordingComponent
from tests.support.ci import require_tool


def test_default_is_more_than_twisteds() -> None:
    """The constant is what the kernel default allows on Linux (and far above 50)."""
    assert DEFAULT_BACKLOG == 4096


def listen(endpoint: Any) -> MemoryReactor:
    reactor = MemoryReactor()
    IoServer(RecordingComponent(), endpoint, reactor).listen()
    return reactor


@pytest.mark.parametrize("address", ["0.0.0.0", "::1"])
def test_io_server_factory(address: str) -> None:
    """IoServer.factory listens with DEFAULT_BACKLOG, IPv4 and IPv6."""
    reactor = MemoryReactor()
    IoServer.factory(RecordingComponent(), 9000, address, reactor=reactor).listen()
    (port, _, backlog, interface), = reactor.tcpServers
    assert (port, backlog, interface) == (9000, DEFAULT_BACKLOG, address)


def test_io_server_int_port() -> None:
    """IoServer(component, 9000) listens with DEFAULT_BACKLOG."""
    assert listen(9000).tcpServers[0][2] == DEFAULT_BACKLOG


@pytest.mark.parametrize(
    "description, backlog",
    [
        ("tcp:9000:interface=127.0.0.1", DEFAULT_BACKLOG),
        ("tcp:9000", DEFAULT_BACKLOG),
        ("tcp6:9000:interface=\\:\\:1", DEFAULT_BACKLOG),
        ("tcp:9000:backlog=128", 128),
        ("tcp:9000:127.0.0.1:77", 77),  # given positionally: kept
    ],
)
def test_tcp_descriptions(description: str, backlog: int) -> None:
    """Descriptions without backlog= get DEFAULT_BACKLOG; an explicit one wins."""
    assert listen(description).tcpServers[0][2] == backlog


def test_unix_description(tmp_path: Path) -> None:
    """unix: descriptions get the default too."""
    reactor = listen(f"unix:{tmp_path / 'sock'}")
    assert reactor.unixServers[0][2] == DEFAULT_BACKLOG


def test_ssl_description(tls_files: tuple[str, str]) -> None:
    """ssl: descriptions get it, with or without an explicit value."""
    cert, key = tls_files
    spec = f"ssl:9443:privateKey={key}:certKey={cert}"
    assert listen(spec).sslServers[0][3] == DEFAULT_BACKLOG
    assert listen(spec + ":backlog=64").sslServers[0][3] == 64


def test_bad_description_reports_the_users_own_error() -> None:
    """A bad description names what the user wrote, not the backlog ratchetpy adds."""
    with pytest.raises(ConfigurationError) as info:
        listen("tcp:9000:colour=blue")
    assert "colour" in str(info.value) and "backlog" not in str(info.value)


def test_app_endpoints(tls_files: tuple[str, str]) -> None:
    """App's own endpoints (TCP4, TCP6, SSL4) listen with DEFAULT_BACKLOG."""
    tcp4, tcp6, tls = MemoryReactor(), MemoryReactor(), MemoryReactor()
    App("*", 9000, "127.0.0.1", tcp4).privilegedStartService()
    App("*", 9000, "::1", tcp6).privilegedStartService()
    cert, key = tls_files
    App("*", 9443, "127.0.0.1", tls, tls={"local_cert": cert, "local_pk": key}).privilegedStartService()
    assert tcp4.tcpServers[0][2] == tcp6.tcpServers[0][2] == DEFAULT_BACKLOG
    assert tls.sslServers[0][3] == DEFAULT_BACKLOG


def test_twistd_default_and_explicit_listen() -> None:
    """twistd's default --listen gets DEFAULT_BACKLOG; --listen ...:backlog=N keeps N."""
    for args, expected in [
        ([], DEFAULT_BACKLOG),
        (["--listen", "tcp:9001:backlog=300"], 300),
    ]:
        options = Options()
        options.parseOptions(["--route", "/chat", *args])
        reactor = MemoryReactor()
        makeService(options, reactor=reactor).privilegedStartService()
        assert reactor.tcpServers[0][2] == expected
    assert str(DEFAULT_BACKLOG) in Options().opt_listen.__doc__


class RealSocketTests(TestCase):
    def test_kernel_listen_queue(self) -> Any:
        """
        The kernel's listen queue is DEFAULT_BACKLOG, capped by net.core.somaxconn
        (``ss`` shows a listening socket's queue size as Send-Q).
        """
        require_tool(shutil.which("ss") is not None, "ss is not installed", "apt-get install iproute2")
        server = IoServer.factory(RecordingComponent(), 0, "127.0.0.1", reactor=global_reactor)
        port = self.successResultOf(server.listen())
        self.addCleanup(server.stopService)
        number = port.getHost().port
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{number}"], capture_output=True, text=True, check=True
        ).stdout.split()
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        assert int(out[2]) == min(DEFAULT_BACKLOG, somaxconn), out
