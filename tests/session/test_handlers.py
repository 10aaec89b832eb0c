"""
The session handlers without PHP: id validation, save paths, the files
handler on real files, descriptions (``handler_from_spec``), and stores
that are down.
"""

from __future__ import annotations

import os
import time

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from ratchetpy.exceptions import ConfigurationError, SessionDataError, SessionStoreUnavailable
from ratchetpy.session import (
    FilesHandler,
    MemcachedHandler,
    MemcacheSessionHandler,
    NativeFileSessionHandler,
    NullSessionHandler,
    RedisHandler,
    RedisSessionHandler,
    check_session_id,
    handler_from_spec,
    is_session_id,
)
from ratchetpy.session.handlers import _read_file, parse_save_path
from ratchetpy.session.laravel import laravel_cache_keys
from ratchetpy.session.memcached_handler import parse_memcached_address
from ratchetpy.session.redis_handler import redis_url_from_save_path
from ratchetpy.session.spec import LARAVEL_REDIS_PREFIXES
from tests.session.tempdirs import TempDirCase
from tests.support.processes import free_port
from tests.support.timing import seconds

GOOD = "k3j4h5g6f7d8s9a0q1w2e3r4t5"


@pytest.mark.parametrize(
    "value",
    [GOOD, "a" * 22, "A-b,c" + "9" * 251, "x" * 40],
)
def test_ids_php_can_make_pass(value):
    assert check_session_id(value) == value and is_session_id(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("../../etc/passwd" + "a" * 10, "'.'"),
        ("a" * 21, "not 21"),
        ("a" * 257, "not 257"),
        ("abc\r\nSET x 1" + "a" * 20, "'\\r'"),
        ("abc def" + "a" * 20, "' '"),
        ("abc/def" + "a" * 20, "'/'"),
        ("abcé" + "a" * 20, "'é'"),
        ("", "not 0"),
    ],
)
def test_hostile_ids_are_refused_before_any_path_or_key(value, says):
    with pytest.raises(SessionDataError) as caught:
        check_session_id(value)
    assert says in str(caught.value)
    assert not is_session_id(value)


def test_a_non_string_id_is_refused():
    with pytest.raises(SessionDataError, match="string"):
        check_session_id(b"a" * 30)


@pytest.mark.parametrize(
    ("save_path", "parsed"),
    [
        ("/var/lib/php/sessions", (0, "/var/lib/php/sessions")),
        ("2;/tmp/s", (2, "/tmp/s")),
        ("3;0600;/tmp/s", (3, "/tmp/s")),
    ],
)
def test_save_path_forms(save_path, parsed):
    assert parse_save_path(save_path) == parsed


@pytest.mark.parametrize(
    ("save_path", "says"),
    [("", "empty"), ("x;/tmp", "depth"), ("1;2;3;/tmp", "too many"), ("2;rw;/tmp", "octal"), ("2;", "no directory")],
)
def test_bad_save_paths_name_the_forms(save_path, says):
    with pytest.raises(ConfigurationError) as caught:
        parse_save_path(save_path)
    assert says in str(caught.value) and "N;/path" in str(caught.value)


def test_files_paths_with_subdirectory_levels(tmp_path):
    assert FilesHandler(str(tmp_path)).path_of(GOOD) == str(tmp_path / f"sess_{GOOD}")
    assert FilesHandler(f"2;{tmp_path}").path_of(GOOD) == str(tmp_path / "k" / "3" / f"sess_{GOOD}")
    assert FilesHandler(str(tmp_path), prefix="").path_of(GOOD) == str(tmp_path / GOOD)
    with pytest.raises(SessionDataError):
        FilesHandler(str(tmp_path)).path_of("../" + GOOD)


def test_read_file_gives_data_and_mtime(tmp_path):
    path = tmp_path / "sess_x"
    path.write_bytes(b'name|s:5:"alice";')
    os.utime(path, (1_600_000_000, 1_600_000_000))
    record = _read_file(str(path), 1024)
    assert record is not None
    assert record.data == b'name|s:5:"alice";' and record.modified == 1_600_000_000
    assert _read_file(str(tmp_path / "nothing"), 1024) is None


def test_read_file_refuses_oversized_and_links(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    with pytest.raises(SessionDataError, match="over the limit"):
        _read_file(str(big), 50)
    link = tmp_path / "link"
    link.symlink_to(big)
    with pytest.raises(SessionDataError, match="symbolic link"):
        _read_file(str(link), 1024)


def test_read_file_says_how_to_fix_permissions(tmp_path, monkeypatch):
    path = tmp_path / "sess_x"
    path.write_bytes(b"x")
    path.chmod(0)
    if os.getuid() == 0:
        # root reads any file (CI runs as root): make the open fail as it
        # does for the server's unprivileged user.
        real_open = os.open

        def refuse(name, *args, **kwargs):
            if os.fspath(name) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(SessionStoreUnavailable, match="read access"):
        _read_file(str(path), 1024)


def test_read_file_waits_briefly_for_phps_lock_then_reads(tmp_path):
    import fcntl

    path = tmp_path / "sess_x"
    path.write_bytes(b"a|i:1;")
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        slept: list[float] = []
        record = _read_file(str(path), 1024, sleep=slept.append)
    assert record is not None and record.data == b"a|i:1;"
    assert len(slept) == 10  # bounded: it never waits for the PHP request to end


class FilesHandlerThreadTests(TempDirCase):
    """Reads go through the reactor's thread pool, never on the reactor thread."""

    @defer.inlineCallbacks
    def test_read_and_read_record(self):
        directory = self.temp_dir()
        os.makedirs(os.path.join(directory, "k", "3"))
        with open(os.path.join(directory, "k", "3", f"sess_{GOOD}"), "wb") as f:
            f.write(b"user|s:3:\"bob\";")
        handler = FilesHandler(f"2;{directory}")
        data = yield handler.read(GOOD)
        self.assertEqual(data, b'user|s:3:"bob";')
        record = yield handler.read_record(GOOD)
        self.assertLess(abs(record.modified - time.time()), 60)
        missing = yield handler.read("z" * 30)
        self.assertIsNone(missing)

    @defer.inlineCallbacks
    def test_read_refuses_a_hostile_id(self):
        with self.assertRaises(SessionDataError):
            yield FilesHandler(self.temp_dir()).read("../../etc/passwd/aaaaaaaaaaaa")


def test_null_handler_has_nothing():
    got = []
    NullSessionHandler().read(GOOD).addCallback(got.append)
    assert got == [None]


def test_symfony_and_ratchet_names():
    assert NativeFileSessionHandler is FilesHandler
    assert RedisSessionHandler is RedisHandler
    assert MemcacheSessionHandler is MemcachedHandler


def test_specs(tmp_path):
    files = handler_from_spec(f"files:2;{tmp_path}")
    assert isinstance(files, FilesHandler) and (files.depth, files.prefix) == (2, "sess_")
    assert isinstance(handler_from_spec(str(tmp_path)), FilesHandler)
    laravel_files = handler_from_spec(f"files:{tmp_path}", laravel=True)
    assert isinstance(laravel_files, FilesHandler) and laravel_files.prefix == ""
    redis = handler_from_spec("redis://127.0.0.1:6390/3")
    assert isinstance(redis, RedisHandler) and redis.prefixes == ("PHPREDIS_SESSION:", "sf_s")
    assert handler_from_spec("redis://127.0.0.1:6390/3?prefix=app:").prefixes == ("app:",)  # type: ignore[attr-defined]
    assert handler_from_spec("redis://127.0.0.1/0", laravel=True).prefixes == LARAVEL_REDIS_PREFIXES  # type: ignore[attr-defined]
    assert LARAVEL_REDIS_PREFIXES == tuple(laravel_cache_keys(""))
    memcached = handler_from_spec("memcached:127.0.0.1:11299")
    assert isinstance(memcached, MemcachedHandler) and (memcached.host, memcached.port) == ("127.0.0.1", 11299)
    assert memcached.prefixes == ("memc.sess.key.", "sf2s")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "no session handler"),
        ("mysql://x", "unknown session handler"),
        ("files:", "empty"),
        ("memcached:127.0.0.1:99999", "1-65535"),
        ("memcached:a:1,b:2", "one memcached server"),
        ("redis://h:1,redis://h:2", "one Redis server"),
    ],
)
def test_bad_specs(spec, says):
    with pytest.raises(ConfigurationError, match=says):
        handler_from_spec(spec)


def test_phpredis_save_paths_become_urls():
    assert redis_url_from_save_path("tcp://127.0.0.1:6379?database=2&prefix=app:&persistent=1") == (
        "redis://127.0.0.1:6379/2",
        "app:",
    )
    url, prefix = redis_url_from_save_path("tcp://10.0.0.1:6380?auth=secret&timeout=2")
    assert url == "redis://:secret@10.0.0.1:6380?timeout=2" and prefix is None
    assert redis_url_from_save_path("redis://127.0.0.1/1") == ("redis://127.0.0.1/1", None)


def test_memcached_addresses():
    assert parse_memcached_address("127.0.0.1:11211") == ("127.0.0.1", 11211)
    assert parse_memcached_address("memcached://cache") == ("cache", 11211)
    assert parse_memcached_address("[::1]:11300") == ("::1", 11300)
    assert parse_memcached_address("cache:11211:1") == ("cache", 11211)  # php-memcached's weight


def test_memcached_keys():
    handler = MemcachedHandler("127.0.0.1", 1)
    assert handler.keys_of(GOOD) == [f"memc.sess.key.{GOOD}".encode(), f"sf2s{GOOD}".encode()]
    with pytest.raises(SessionDataError, match="too long"):
        MemcachedHandler("127.0.0.1", 1, prefix="p" * 10).keys_of("a" * 245)
    with pytest.raises(ConfigurationError):
        MemcachedHandler("127.0.0.1", 1, prefix="a b")


class DownStoreTests(unittest.TestCase):
    """A store that is not there fails reads with SessionStoreUnavailable, quickly."""

    timeout = 30

    @defer.inlineCallbacks
    def test_memcached_never_reachable_fails_after_the_first_attempt_then_fast(self):
        from twisted.internet import reactor

        handler = MemcachedHandler("127.0.0.1", free_port(), timeout=seconds(2), reactor=reactor)
        self.addCleanup(handler.stop)
        with self.assertRaises(SessionStoreUnavailable):
            yield handler.read_record(GOOD)  # waited for the first attempt, which was refused
        second = handler.read_record(GOOD)
        self.assertTrue(second.called)  # no waiting any more
        with self.assertRaises(SessionStoreUnavailable):
            yield second

    @defer.inlineCallbacks
    def test_redis_down_fails_fast_once_it_was_up(self):
        clock = MemoryReactorClock()
        handler = RedisHandler("redis://127.0.0.1:6390/0", reactor=clock)
        handler.start(clock)
        handler._ever_usable = True  # it was up; now the connection is gone
        with self.assertRaises(SessionStoreUnavailable):
            yield handler.read_record(GOOD)
        yield handler.stop()

    @defer.inlineCallbacks
    def test_redis_waits_for_its_first_connection_and_stop_releases_it(self):
        clock = MemoryReactorClock()
        handler = RedisHandler("redis://127.0.0.1:6390/0", reactor=clock)
        reading = handler.read_record(GOOD)
        self.assertFalse(reading.called)
        yield handler.stop()
        with self.assertRaises(SessionStoreUnavailable):
            yield reading
