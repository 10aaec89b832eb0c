"""RedisConfig.from_url: every part of the URL, and errors that name the problem without the password."""

from __future__ import annotations

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.redis.endpoints import endpoint_for
from ratchetpy.redis.url import RedisConfig, redact_url

SECRET = "s3cr3t-p4ss"


def test_defaults() -> None:
    config = RedisConfig.from_url("redis://localhost")
    assert (config.host, config.port, config.db, config.tls) == ("localhost", 6379, 0, False)
    assert config.username is None and config.password is None and config.prefix == ""
    assert (config.timeout, config.connect_timeout, config.health_interval) == (5.0, 5.0, 5.0)
    assert config.max_pending == 1000 and config.client_name == "ratchetpy"


def test_every_part() -> None:
    config = RedisConfig.from_url(
        f"redis://app:{SECRET}@redis.example:6380/2?prefix=app:&timeout=2&connect_timeout=3"
        "&health_interval=0.5&max_pending=10&client_name=node-1"
    )
    assert (config.host, config.port, config.db) == ("redis.example", 6380, 2)
    assert (config.username, config.password) == ("app", SECRET)
    assert config.prefix == "app:"
    assert (config.timeout, config.connect_timeout, config.health_interval) == (2.0, 3.0, 0.5)
    assert config.max_pending == 10 and config.client_name == "node-1"


def test_password_only_and_percent_escapes() -> None:
    config = RedisConfig.from_url("redis://:p%40ss%3Aword@127.0.0.1/0")
    assert config.username is None and config.password == "p@ss:word"


def test_redis_py_option_names_are_accepted() -> None:
    config = RedisConfig.from_url(
        "redis://h/?socket_timeout=1.5&socket_connect_timeout=2&health_check_interval=7&db=4"
    )
    assert (config.timeout, config.connect_timeout, config.health_interval, config.db) == (
        1.5,
        2.0,
        7.0,
        4,
    )


def test_ipv6_host() -> None:
    config = RedisConfig.from_url("redis://[::1]:7000")
    assert (config.host, config.port) == ("::1", 7000)
    assert config.address == "redis://[::1]:7000/0"


def test_rediss_and_its_options(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = RedisConfig.from_url(
        f"rediss://h:6390?ssl_ca_certs={ca}&ssl_cert_reqs=none&ssl_server_name=redis.internal"
    )
    assert config.tls and config.tls_ca == str(ca) and not config.tls_verify
    assert config.tls_server_name == "redis.internal"
    assert config.address.startswith("rediss://")


def test_unix_socket() -> None:
    config = RedisConfig.from_url(f"unix:///run/redis.sock?db=3&password={SECRET}&username=app")
    assert config.unix_path == "/run/redis.sock" and config.db == 3
    assert (config.username, config.password) == ("app", SECRET)
    assert SECRET not in config.address
    assert config.address == "unix://app:***@/run/redis.sock?db=3"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h", "must start with redis://"),
        ("redis://", "has no host"),
        ("redis://h:notaport", "port must be a number"),
        ("redis://h:70000", "port must be a number"),
        ("redis://h/abc", "database number (the URL's path) must be a whole number, not 'abc'"),
        ("redis://h/-1", "database number must be 0 or more"),
        ("redis://h?timeout=fast", "timeout must be a number of seconds, not 'fast'"),
        ("redis://h?timeout=0", "timeout must be more than 0"),
        ("redis://h?timeout=nan", "timeout must be more than 0"),
        ("redis://h?health_interval=-1", "health_interval must be 0 (off) or more"),
        ("redis://h?max_pending=0", "max_pending must be 1 or more"),
        ("redis://h?retry=yes", "unknown option 'retry'"),
        ("redis://h?ssl_ca_certs=/x", "TLS options (ssl_ca_certs) but is not rediss://"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs must be 'required' or 'none'"),
        ("rediss://h?ssl_ca_certs=/no/such.pem", "ssl_ca_certs file '/no/such.pem' does not exist"),
        ("rediss://h?ssl_certfile=/etc/hostname", "needs both ssl_certfile and ssl_keyfile"),
        ("redis://h?client_name=two%20words", "client_name cannot contain spaces"),
        ("unix://relative/path", "three slashes"),
        ("redis://h?password=x", "not as options"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=None) as caught:
        RedisConfig.from_url(url)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{SECRET}@h:bad/0",
        f"redis://user:{SECRET}@h/zero",
        f"redis://:{SECRET}@h?nope=1",
        f"redis://{SECRET}@h/0",  # a password written where the user goes
        f"unix:///s?password={SECRET}&db=x",
    ],
)
def test_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisConfig.from_url(url)
    assert SECRET not in str(caught.value)


def test_repr_and_address_hide_the_password() -> None:
    config = RedisConfig.from_url(f"redis://app:{SECRET}@h:6379/1")
    assert SECRET not in repr(config)
    assert config.address == "redis://app:***@h:6379/1"
    assert redact_url(f"redis://app:{SECRET}@h?prefix=p") == "redis://app:***@h?prefix=p"


def test_with_options_checks_again() -> None:
    config = RedisConfig.from_url("redis://h")
    assert config.with_options(db=5).db == 5
    with pytest.raises(ConfigurationError, match="max_pending"):
        config.with_options(max_pending=0)


def test_endpoints_match_the_url(tmp_path) -> None:
    from twisted.internet.endpoints import (
        HostnameEndpoint,
        TCP4ClientEndpoint,
        TCP6ClientEndpoint,
        UNIXClientEndpoint,
    )
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    assert isinstance(
        endpoint_for(RedisConfig.from_url("redis://127.0.0.1"), reactor), TCP4ClientEndpoint
    )
    assert isinstance(
        endpoint_for(RedisConfig.from_url("redis://[::1]"), reactor), TCP6ClientEndpoint
    )
    assert isinstance(
        endpoint_for(RedisConfig.from_url("redis://redis.local"), reactor), HostnameEndpoint
    )
    assert isinstance(
        endpoint_for(RedisConfig.from_url("unix:///tmp/r.sock"), reactor), UNIXClientEndpoint
    )


def test_unreadable_tls_files_are_configuration_errors(tmp_path) -> None:
    from twisted.internet.testing import MemoryReactorClock

    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    config = RedisConfig.from_url(f"rediss://127.0.0.1?ssl_ca_certs={bad}")
    with pytest.raises(ConfigurationError, match="ssl_ca_certs .* is not a PEM certificate"):
        endpoint_for(config, MemoryReactorClock())
