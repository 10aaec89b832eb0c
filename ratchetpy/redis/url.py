# -*- test-case-name: tests.redis.test_url -*-
"""
``RedisConfig``: where Redis is and how to talk to it, read from a URL.

.. code-block:: text

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    rediss://...                      TLS (certificate verified by default)
    unix:///path/to/redis.sock[?db=N&password=...&...]
    redis+cluster://[[user]:password@]host:port[,host:port...][?option=value&...]
    rediss+cluster://...              a Redis Cluster over TLS

A Redis Cluster is given by one or more *seed* nodes, comma separated
(``redis+cluster://``, or ``?cluster=1`` on a ``redis://`` URL): the
client asks them for the slot map and connects to every primary itself
(``ratchetpy.redis.cluster``). A cluster has only database 0, so a path
or ``db`` other than 0 is refused; ``unix://`` cannot be a cluster.

Options (query parameters; the names in brackets are redis-py's, accepted
so an existing ``REDIS_URL`` works unchanged):

``prefix``
    prepended to keys by ``RedisClient.key()`` (default none)
``db``
    the database number, instead of the path (default 0)
``timeout`` [``socket_timeout``]
    seconds a command may wait for its reply (default 5)
``connect_timeout`` [``socket_connect_timeout``]
    seconds for TCP connect plus AUTH/SELECT (default 5)
``health_interval`` [``health_check_interval``]
    seconds between PINGs on an idle connection (default 5; 0 turns them off)
``max_pending``
    commands that may wait for replies at once (default 1000)
``client_name``
    the CLIENT SETNAME of each connection (default ``ratchetpy``; empty: none)
``cluster``
    ``1`` (or ``yes``/``true``): the URL's hosts are Redis Cluster seed
    nodes, as with ``redis+cluster://`` (default 0)
``password``, ``username``
    unix:// only (TCP URLs carry them in the authority part)
``ssl_ca_certs``, ``ssl_cert_reqs`` (``required`` or ``none``), ``ssl_certfile``, ``ssl_keyfile``, ``ssl_server_name``
    rediss:// only: the CA file to verify the server with (default: the
    system's), whether to verify it, a client certificate and key, and the
    name to verify (default: the host)

A URL that cannot work raises ``ConfigurationError`` saying what is wrong;
the password never appears in a message, a log line or a ``repr``
(``RedisConfig.address`` is the URL with the password replaced by ``***``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..exceptions import ConfigurationError

__all__ = ["RedisConfig", "redact_url", "DEFAULT_PORT"]

DEFAULT_PORT = 6379
SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

_ALIASES = {
    "socket_timeout": "timeout",
    "socket_connect_timeout": "connect_timeout",
    "health_check_interval": "health_interval",
}
_OPTIONS = (
    "prefix",
    "db",
    "timeout",
    "connect_timeout",
    "health_interval",
    "max_pending",
    "client_name",
    "password",
    "username",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_server_name",
    "cluster",
)
_TLS_OPTIONS = frozenset(o for o in _OPTIONS if o.startswith("ssl_"))


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable Redis URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        netloc = f"{user}:***@{hostport}"
    query = "&".join(
        f"{name}=***" if name == "password" else f"{name}={quote(value, safe=':/')}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt


@dataclass(frozen=True)
class RedisConfig:
    """
    Everything needed to connect to one Redis server. Build it with
    ``RedisConfig.from_url(url)`` or directly; ``with_options(**changes)``
    returns a copy with some fields changed.

    Attributes:
        host: host name or IP address (ignored when ``unix_path`` is set).
        port: TCP port.
        unix_path: a UNIX socket path instead of TCP.
        db: the database SELECTed on every connection.
        username: the ACL user (Redis 6+); None authenticates as ``default``.
        password: sent with AUTH; None sends no AUTH. Never shown by ``repr``.
        tls: connect with TLS (``rediss://``).
        tls_ca: PEM file of the CA to verify the server with; None: the system's.
        tls_verify: verify the server's certificate and name.
        tls_cert, tls_key: a client certificate and its key (PEM), if Redis asks for one.
        tls_server_name: the name to verify and send as SNI; None: ``host``.
        prefix: what ``RedisClient.key(name)`` prepends.
        timeout: seconds a command may wait for its reply.
        connect_timeout: seconds for the TCP connection plus AUTH and SELECT.
        health_interval: seconds between PINGs on each connection (0: none).
        max_pending: commands that may wait for their replies at once.
        client_name: CLIENT SETNAME of each connection ("" sends none).
        cluster: the hosts are Redis Cluster seed nodes (``RedisClusterClient``).
        seeds: with ``cluster``: every seed node as ``(host, port)``; the
            first is also ``host``/``port``.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    unix_path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    tls_verify: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    prefix: str = ""
    timeout: float = 5.0
    connect_timeout: float = 5.0
    health_interval: float = 5.0
    max_pending: int = 1000
    client_name: str = "ratchetpy"
    cluster: bool = False
    seeds: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.cluster and not self.seeds:
            object.__setattr__(self, "seeds", ((self.host, self.port),))
        where = self.address
        if self.cluster and self.unix_path is not None:
            raise ConfigurationError(
                f"Redis URL {where}: a Redis Cluster is reached over TCP; give its nodes as "
                "redis+cluster://HOST:PORT[,HOST:PORT...]"
            )
        if self.cluster and self.db != 0:
            raise ConfigurationError(
                f"Redis URL {where}: a Redis Cluster has only database 0, not {self.db}; "
                "keep apps apart with ?prefix= instead"
            )
        if self.unix_path is None and not self.host:
            raise ConfigurationError(f"Redis URL {where} has no host")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"Redis port must be 1-65535, not {self.port} ({where})")
        if self.db < 0:
            raise ConfigurationError(
                f"Redis database number must be 0 or more, not {self.db} ({where})"
            )
        if self.username is not None and self.password is None:
            raise ConfigurationError(
                # no name in the message: in redis://SECRET@host the "user" is a password
                f"Redis URL gives a user but no password ({where}); "
                "write redis://USER:PASSWORD@HOST, or redis://:PASSWORD@HOST for the default user"
            )
        for name in ("timeout", "connect_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(
                    f"Redis {name} must be more than 0 seconds, not {value} ({where})"
                )
        if not (math.isfinite(self.health_interval) and self.health_interval >= 0):
            raise ConfigurationError(
                f"Redis health_interval must be 0 (off) or more seconds, not {self.health_interval} ({where})"
            )
        if self.max_pending < 1:
            raise ConfigurationError(
                f"Redis max_pending must be 1 or more, not {self.max_pending} ({where})"
            )
        if any(c in self.client_name for c in " \r\n"):
            raise ConfigurationError(
                f"Redis client_name cannot contain spaces or newlines ({where})"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError(
                f"Redis TLS client certificate needs both ssl_certfile and ssl_keyfile ({where})"
            )
        for name, path in (
            ("ssl_ca_certs", self.tls_ca),
            ("ssl_certfile", self.tls_cert),
            ("ssl_keyfile", self.tls_key),
        ):
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"Redis {name} file {path!r} does not exist ({where})")

    @property
    def address(self) -> str:
        """Where this connects, as a URL without the password (for logs and messages)."""
        auth = f"{quote(self.username or '', safe='')}:***@" if self.password is not None else ""
        if self.unix_path is not None:
            return f"unix://{auth}{self.unix_path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        if self.cluster:
            hosts = ",".join(_hostport(host, port) for host, port in self.seeds)
            return f"{scheme}+cluster://{auth}{hosts}"
        return f"{scheme}://{auth}{_hostport(self.host, self.port)}/{self.db}"

    @property
    def cluster_url(self) -> str:
        """``redis+cluster://host:port`` for this server, without credentials (for hints)."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://{_hostport(self.host, self.port)}"

    def node(self, host: str, port: int) -> RedisConfig:
        """This config for one node of the cluster (``cluster`` off, same TLS, ACL and timeouts)."""
        return replace(self, host=host, port=port, cluster=False, seeds=())

    def with_options(self, **changes: object) -> RedisConfig:
        """A copy with ``changes`` applied (checked like the original)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_url(cls, url: str) -> RedisConfig:
        """
        Read a ``redis://``, ``rediss://`` or ``unix://`` URL (see the module docs).

        Raises:
            ConfigurationError: naming what is wrong; never showing the password.
        """
        where = redact_url(url)
        url, seeds = _split_seeds(url, where)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigurationError(
                f"Redis URL {where} is not valid (the port must be a number 1-65535)"
            ) from None
        scheme = parts.scheme.lower()
        cluster = scheme in CLUSTER_SCHEMES
        if cluster:
            scheme = scheme.partition("+")[0]
        if scheme not in SCHEMES:
            raise ConfigurationError(
                f"Redis URL {where} must start with redis://, rediss:// (TLS), unix:// or "
                "redis+cluster:// (a Redis Cluster)"
            )
        options: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            name = _ALIASES.get(name, name)
            if name not in _OPTIONS:
                raise ConfigurationError(
                    f"Redis URL {where} has an unknown option {name!r}; known: {', '.join(_OPTIONS)}"
                )
            options[name] = value
        if scheme != "rediss" and _TLS_OPTIONS & options.keys():
            raise ConfigurationError(
                f"Redis URL {where} has TLS options ({', '.join(sorted(_TLS_OPTIONS & options.keys()))}) "
                "but is not rediss://"
            )
        fields: dict[str, object] = {"tls": scheme == "rediss"}
        if scheme == "unix":
            if parts.netloc and "@" not in parts.netloc:
                raise ConfigurationError(
                    f"Redis URL {where}: write unix:///absolute/path (three slashes)"
                )
            if not parts.path:
                raise ConfigurationError(f"Redis URL {where} has no socket path")
            fields["unix_path"] = unquote(parts.path)
        else:
            if not parts.hostname:
                raise ConfigurationError(f"Redis URL {where} has no host")
            fields["host"] = unquote(parts.hostname)
            fields["port"] = DEFAULT_PORT if port is None else port
            path = parts.path.strip("/")
            if path:
                fields["db"] = _integer(path, "database number (the URL's path)", where)
        if parts.username:
            fields["username"] = unquote(parts.username)
        if parts.password is not None:
            fields["password"] = unquote(parts.password)
        if scheme != "unix" and ("password" in options or "username" in options):
            raise ConfigurationError(
                f"Redis URL {where}: give the user and password as redis://USER:PASSWORD@HOST, not as options"
            )
        for name, value in options.items():
            fields.update(_option(name, value, where))
        if cluster:
            fields["cluster"] = True
        if seeds and not fields.get("cluster"):
            raise ConfigurationError(
                f"Redis URL {where} names several hosts: that is a Redis Cluster; write "
                "redis+cluster://HOST:PORT,HOST:PORT (or add ?cluster=1)"
            )
        if fields.get("cluster") and "host" in fields:
            fields["seeds"] = ((fields["host"], fields["port"]), *seeds)
        if fields.get("username") == "":
            fields["username"] = None
        return cls(**fields)  # type: ignore[arg-type]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_seeds(url: str, where: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """``url`` with only its first host, and the other hosts of a comma list."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, ()
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url, ()
    first, *others = hosts.split(",")
    seeds = []
    for other in others:
        try:
            parts = urlsplit(f"//{other}")
            port = parts.port
        except ValueError:
            raise ConfigurationError(
                f"Redis URL {where}: seed node {other!r} is not HOST:PORT (port 1-65535)"
            ) from None
        if not parts.hostname:
            raise ConfigurationError(f"Redis URL {where}: an empty seed node in the host list")
        seeds.append((unquote(parts.hostname), DEFAULT_PORT if port is None else port))
    return f"{scheme}://{userinfo}{at}{first}{tail}", tuple(seeds)


def _option(name: str, value: str, where: str) -> dict[str, object]:
    if name == "cluster":
        flag = value.lower()
        if flag not in ("1", "0", "yes", "no", "true", "false", "on", "off"):
            raise ConfigurationError(
                f"Redis URL {where}: cluster must be 1 or 0, not {value!r}"
            )
        return {"cluster": flag in ("1", "yes", "true", "on")}
    if name in ("timeout", "connect_timeout", "health_interval"):
        try:
            return {name: float(value)}
        except ValueError:
            raise ConfigurationError(
                f"Redis URL {where}: {name} must be a number of seconds, not {value!r}"
            ) from None
    if name in ("db", "max_pending"):
        return {name: _integer(value, name, where)}
    if name == "ssl_cert_reqs":
        if value.lower() not in ("required", "none"):
            raise ConfigurationError(
                f"Redis URL {where}: ssl_cert_reqs must be 'required' or 'none', not {value!r}"
            )
        return {"tls_verify": value.lower() == "required"}
    renamed = {
        "ssl_ca_certs": "tls_ca",
        "ssl_certfile": "tls_cert",
        "ssl_keyfile": "tls_key",
        "ssl_server_name": "tls_server_name",
    }
    return {renamed.get(name, name): value}


def _integer(value: str, what: str, where: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise ConfigurationError(
            f"Redis URL {where}: {what} must be a whole number, not {value!r}"
        ) from None
