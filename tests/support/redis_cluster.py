"""
``RedisCluster``: a real Redis Cluster of three primaries (and
``replicas`` replicas each, default none) on
free loopback ports, made with ``redis-cli --cluster create``, for the
cluster tests; and the slot migrations they put it through.

.. code-block:: python

    with RedisCluster(tmp_path) as cluster:
        cluster.url                      # redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
        cluster.owner(slot)              # the RedisServer serving it
        cluster.migrate(slot, target)    # MIGRATING/IMPORTING, MIGRATE every key, SETSLOT NODE

``extra`` arguments go to every ``redis-server`` (e.g.
``--cluster-require-full-coverage no``, so the other shards keep serving
once a primary is marked failed). Startup is bounded (``seconds(30)``); every server is killed on exit.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.processes import free_port
from tests.support.redis import REDIS_CLI, RedisServer
from tests.support.timing import seconds

__all__ = ["RedisCluster"]


class RedisCluster:
    """Three ``redis-server --cluster-enabled yes`` primaries (see the module docs)."""

    def __init__(
        self,
        directory: Path,
        *extra: str,
        primaries: int = 3,
        replicas: int = 0,
        password: str | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.password = password
        self.tls = tls
        self.tls_ports: dict[int, int] = {}
        self.extra = extra
        self.replicas = replicas
        self.count = primaries * (1 + replicas)
        self.servers: list[RedisServer] = []

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The cluster's URL (with the password; over TLS when started with ``tls``)."""
        auth = f":{self.password}@" if self.password is not None else ""
        if self.tls is not None:
            hosts = ",".join(f"127.0.0.1:{self.tls_ports[s.port]}" for s in self.servers)
            return f"rediss+cluster://{auth}{hosts}?ssl_ca_certs={self.tls[0]}"
        return f"redis+cluster://{auth}" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self) -> RedisCluster:
        try:
            for _ in range(self.count):
                port = free_port()
                options: list[str] = []
                if self.password is not None:
                    options += ["--requirepass", self.password, "--masterauth", self.password]
                if self.tls is not None:
                    cert, key = self.tls
                    self.tls_ports[port] = free_port()
                    options += ["--tls-port", str(self.tls_ports[port]), "--tls-cert-file", cert,
                                "--tls-key-file", key, "--tls-ca-cert-file", cert,
                                "--tls-auth-clients", "no", "--tls-cluster", "yes",
                                "--tls-replication", "yes"]  # fmt: skip
                self.servers.append(
                    RedisServer(
                        self.directory,
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
                        # its own bus port (default: port + 10000, maybe taken or over 65535)
                        "--cluster-port", str(free_port()),
                        "--cluster-node-timeout", "2000",
                        # replicas sync at once (a replica that never synced cannot fail over)
                        "--repl-diskless-sync-delay", "0",
                        *options,
                        *self.extra,
                        port=port,
                    ).start()
                )  # fmt: skip
                self.servers[-1].cli.password = self.password
            assert REDIS_CLI is not None
            auth = ["-a", self.password, "--no-auth-warning"] if self.password is not None else []
            created = subprocess.run(
                [REDIS_CLI, *auth, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                capture_output=True, text=True, timeout=seconds(30),
            )  # fmt: skip
            assert created.returncode == 0, created.stdout + created.stderr
            self.wait_ok()
            self.wait_replicas_synced()
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> list[RedisServer]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    def wait_ok(self, servers: list[RedisServer] | None = None) -> None:
        """Until every (given, else every live) server says ``cluster_state:ok``."""
        deadline = time.monotonic() + seconds(20)
        for server in servers or self.alive():
            while "cluster_state:ok" not in server.cli("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, server.cli("CLUSTER", "INFO")
                time.sleep(0.05)

    def wait_replicas_synced(self) -> None:
        """Until every replica says ``master_link_status:up``."""
        deadline = time.monotonic() + seconds(20)
        for server in self.alive():
            while True:
                info = server.cli("INFO", "replication")
                if "role:slave" not in info or "master_link_status:up" in info:
                    break
                assert time.monotonic() < deadline, info
                time.sleep(0.05)

    def stop(self) -> None:
        for server in self.servers:
            server.kill()

    def node_id(self, server: RedisServer) -> str:
        return server.cli("CLUSTER", "MYID")

    def owner(self, slot: int) -> RedisServer:
        """The live primary that ``CLUSTER NODES`` (asked of a live server) says serves ``slot``."""
        asked = self.alive()[0]
        for line in asked.cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            # <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>
            if "master" not in fields[2].split(",") or "fail" in fields[2].split(","):
                continue
            port = int(fields[1].split("@")[0].rpartition(":")[2])
            for part in fields[8:]:
                if part.startswith("["):
                    continue  # a slot being migrated or imported
                start, _, end = part.partition("-")
                if int(start) <= slot <= int(end or start):
                    return next(s for s in self.servers if s.port == port)
        raise AssertionError(f"no live primary serves slot {slot}")

    def primaries(self) -> list[RedisServer]:
        """The live servers ``CLUSTER NODES`` lists as primaries."""
        ports = set()
        for line in self.alive()[0].cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "master" in fields[2].split(",") and "fail" not in fields[2]:
                ports.add(int(fields[1].split("@")[0].rpartition(":")[2]))
        return [s for s in self.servers if s.port in ports]

    def other_than(self, *servers: RedisServer) -> RedisServer:
        return next(s for s in self.servers if s not in servers)

    def begin_migration(self, slot: int, target: RedisServer) -> RedisServer:
        """IMPORTING on ``target``, MIGRATING on the owner; returns the owner (source)."""
        source = self.owner(slot)
        target.cli("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        source.cli("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))
        return source

    def move_keys(self, slot: int, source: RedisServer, target: RedisServer, keys: list[str] | None = None) -> None:
        """MIGRATE ``keys`` (default: every key in the slot) from ``source`` to ``target``."""
        if keys is None:
            listed = source.cli("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            keys = [k for k in listed.split("\n") if k]
        if keys:
            source.cli("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)

    def end_migration(self, slot: int, target: RedisServer) -> None:
        """SETSLOT NODE on every primary: ``target`` owns ``slot`` now."""
        target_id = self.node_id(target)
        # the target first (as redis-cli --cluster does), then the others
        for server in sorted(self.servers, key=lambda s: s is not target):
            if server.process is not None and server.process.poll() is None:
                server.cli("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def migrate(self, slot: int, target: RedisServer) -> RedisServer:
        """Move ``slot`` and its keys to ``target``; returns the old owner."""
        source = self.begin_migration(slot, target)
        self.move_keys(slot, source, target)
        self.end_migration(slot, target)
        return source
