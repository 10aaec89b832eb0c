# -*- test-case-name: tests.session.test_handlers -*-
"""
Where the PHP application keeps its sessions, read without blocking the reactor.

A handler answers ``read(session_id)`` with the raw session data PHP wrote
(``bytes``, not yet decoded) or ``None`` when there is none. The
``SessionProvider`` calls ``read_record`` instead, which also says when the
data was last written where the store knows it (a file's mtime), so that
``session.gc_maxlifetime`` can expire it as PHP's garbage collector would.

- ``FilesHandler`` reads PHP's ``files`` save handler: ``save_path/sess_<id>``,
  or with PHP's ``N;/path`` and ``N;MODE;/path`` forms, ``N`` levels of
  one-character subdirectories (``/path/a/b/sess_ab...`` for ``N=2``).
- ``RedisHandler`` (``ratchetpy.session.redis_handler``) and
  ``MemcachedHandler`` (``ratchetpy.session.memcached_handler``) read the
  keys phpredis, php-memcached and Symfony's handlers write.
- ``NullSessionHandler`` has no sessions (Ratchet's, used without a cookie).

Every session id is checked with :func:`check_session_id` before it
touches a path or a key: PHP's own alphabet ``[a-zA-Z0-9,-]``, 22 to 256
characters, so ``../``, CR/LF or spaces never get through.

Ratchet ports name Symfony's handler classes; the aliases at the end of
this module map them (``NativeFileSessionHandler`` → ``FilesHandler``,
``RedisSessionHandler`` → ``RedisHandler``, ``MemcachedSessionHandler``
and ``MemcacheSessionHandler`` → ``MemcachedHandler``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads

from ..exceptions import ConfigurationError, SessionDataError, SessionStoreUnavailable

__all__ = [
    "SessionRecord",
    "SessionHandler",
    "FilesHandler",
    "NullSessionHandler",
    "NativeFileSessionHandler",
    "check_session_id",
    "is_session_id",
    "parse_save_path",
    "DEFAULT_MAX_SESSION_SIZE",
]

DEFAULT_MAX_SESSION_SIZE = 16 * 1024 * 1024
"""The largest session a handler reads, in bytes (the decoder's limit too)."""

_SESSION_ID = re.compile(r"[a-zA-Z0-9,-]{22,256}")
_LOCK_TRIES = 10
_LOCK_WAIT = 0.02


def is_session_id(value: object) -> bool:
    """True if ``value`` is a string PHP could have made a session id (see :func:`check_session_id`)."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def check_session_id(value: object) -> str:
    """
    ``value`` if it is a session id PHP accepts: 22 to 256 characters from
    ``a-z A-Z 0-9 , -`` (PHP's ``session.sid_bits_per_character`` alphabets
    and length bounds).

    Raises:
        SessionDataError: anything else (the message says what is wrong,
            without echoing more than a few characters of it).
    """
    if not isinstance(value, str):
        raise SessionDataError(f"a session id is a string, not {type(value).__name__}")
    if not 22 <= len(value) <= 256:
        raise SessionDataError(
            f"a session id has 22 to 256 characters (PHP's session.sid_length), not {len(value)}"
        )
    if _SESSION_ID.fullmatch(value) is None:
        bad = next(c for c in value if not (c.isascii() and (c.isalnum() or c in ",-")))
        raise SessionDataError(
            f"a session id has only the characters a-z A-Z 0-9 , - (PHP's alphabet); "
            f"this one has {bad!r}"
        )
    return value


@dataclass(frozen=True)
class SessionRecord:
    """
    What a store holds for one session.

    Attributes:
        data: the session data as PHP wrote it (still serialized).
        modified: when it was last written or touched (seconds since the
            epoch), if the store says (files do); ``None`` when the store
            expires data itself (Redis and memcached keys carry a TTL).
    """

    data: bytes
    modified: float | None = None


class SessionHandler:
    """
    The handler interface (PHP's ``SessionHandlerInterface``, read side only).

    Subclasses implement ``read_record``. Handlers are read-only: PHP owns
    writing, locking and garbage collection of its sessions.

    Attributes:
        description: where the sessions are, for log lines (never a password).
    """

    description = "sessions"

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        """
        The record of ``session_id``, or ``None`` if the store has none.

        ``session_id`` has been checked with :func:`check_session_id`.
        Fails with ``SessionStoreUnavailable`` when the store cannot be read
        now, ``SessionDataError`` when what it holds cannot be a session.
        """
        raise NotImplementedError

    def read(self, session_id: str) -> defer.Deferred[bytes | None]:
        """
        The raw data of ``session_id`` (PHP's ``SessionHandlerInterface::read``),
        or ``None``; an id PHP could not have made fails with ``SessionDataError``.
        """
        try:
            check_session_id(session_id)
        except SessionDataError:
            return defer.fail()
        return self.read_record(session_id).addCallback(
            lambda record: None if record is None else record.data
        )

    def start(self, reactor: Any) -> None:
        """Connect to the store, if it needs a connection (called by the provider on its first use)."""

    def stop(self) -> defer.Deferred[None]:
        """Disconnect from the store; fires once done."""
        return defer.succeed(None)


class NullSessionHandler(SessionHandler):
    """A store with no session in it (Ratchet's ``NullSessionHandler``)."""

    description = "no store"

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        return defer.succeed(None)


def parse_save_path(save_path: str) -> tuple[int, str]:
    """
    ``(depth, directory)`` of a PHP ``session.save_path`` for the files
    handler: ``/var/lib/php/sessions`` → ``(0, ...)``; ``2;/path`` and
    ``2;0600;/path`` → ``(2, "/path")`` (PHP's MODE only matters to writers).

    Raises:
        ConfigurationError: an empty path, a depth that is not a small
            number, or a MODE that is not octal; the message shows the forms.
    """
    forms = "give /path, N;/path or N;MODE;/path (e.g. 2;/var/lib/php/sessions)"
    if not isinstance(save_path, str) or not save_path.strip():
        raise ConfigurationError(f"session.save_path is empty; {forms}")
    parts = save_path.split(";")
    if len(parts) == 1:
        return 0, save_path
    if len(parts) > 3:
        raise ConfigurationError(f"session.save_path {save_path!r} has too many ';'; {forms}")
    depth_text, directory = parts[0].strip(), parts[-1]
    if not depth_text.isdigit() or int(depth_text) > 64:
        raise ConfigurationError(
            f"session.save_path {save_path!r}: the depth N must be a whole number up to 64; {forms}"
        )
    if len(parts) == 3 and not re.fullmatch(r"[0-7]{1,4}", parts[1].strip()):
        raise ConfigurationError(f"session.save_path {save_path!r}: MODE must be octal, e.g. 0600; {forms}")
    if not directory:
        raise ConfigurationError(f"session.save_path {save_path!r} has no directory; {forms}")
    return int(depth_text), directory


class FilesHandler(SessionHandler):
    """
    PHP's ``files`` save handler: ``<save_path>/<prefix><id>``.

    Files are read in the reactor's thread pool (the read itself is
    short, but a disk or NFS mount that stalls must not stall every
    connection). A file PHP is writing right now (it holds an exclusive
    ``flock`` for a whole request) is waited for briefly, then read as is.
    Symbolic links are not followed for the session file itself.

    Args:
        save_path: PHP's ``session.save_path``, including the ``N;/path``
            and ``N;MODE;/path`` forms.
        prefix: the file name before the id (PHP's ``sess_``; Laravel's
            file store uses none).
        max_size: a bigger file is refused (``SessionDataError``).
        reactor: the reactor whose thread pool reads (default: the one
            given to ``start``).
    """

    def __init__(
        self,
        save_path: str,
        *,
        prefix: str = "sess_",
        max_size: int = DEFAULT_MAX_SESSION_SIZE,
        reactor: Any = None,
    ) -> None:
        self.depth, self.directory = parse_save_path(save_path)
        if "/" in prefix or "\0" in prefix:
            raise ConfigurationError(f"the session file prefix cannot hold '/' or NUL: {prefix!r}")
        self.prefix = prefix
        self.max_size = max_size
        self._reactor = reactor
        self.description = f"files in {self.directory}" + (
            f" ({self.depth} levels of subdirectories)" if self.depth else ""
        )

    def start(self, reactor: Any) -> None:
        if self._reactor is None:
            self._reactor = reactor

    def path_of(self, session_id: str) -> str:
        """The file holding ``session_id`` (which must have passed :func:`check_session_id`)."""
        check_session_id(session_id)
        if len(session_id) < self.depth:
            raise SessionDataError(
                f"session id shorter than the save path's {self.depth} directory levels"
            )
        parts = [*session_id[: self.depth], self.prefix + session_id]
        return os.path.join(self.directory, *parts)

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        try:
            path = self.path_of(session_id)
        except SessionDataError:
            return defer.fail()
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        return threads.deferToThreadPool(
            reactor, reactor.getThreadPool(), _read_file, path, self.max_size
        )


def _read_file(path: str, max_size: int, sleep: Callable[[float], None] = time.sleep) -> SessionRecord | None:
    # Runs in a pool thread.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SessionDataError(f"{path} is a symbolic link; session files are not read through links") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise SessionStoreUnavailable(
                f"cannot read {path}: permission denied (the server's user needs read access "
                "to the PHP session files: same group as PHP, or session.save_path of its own)"
            ) from None
        if exc.errno == errno.ENOTDIR:
            return None
        raise SessionStoreUnavailable(f"cannot read {path}: {exc.strerror}") from None
    try:
        # PHP holds LOCK_EX while a request has the session open: wait a
        # little for a consistent file, then read whatever is there.
        for _ in range(_LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError:
                sleep(_LOCK_WAIT)
        info = os.fstat(fd)
        if info.st_size > max_size:
            raise SessionDataError(f"{path} holds {info.st_size} bytes, over the limit of {max_size}")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_size:
                raise SessionDataError(f"{path} grew over the limit of {max_size} bytes")
            chunks.append(chunk)
        return SessionRecord(b"".join(chunks), info.st_mtime)
    finally:
        os.close(fd)  # also releases the lock


NativeFileSessionHandler = FilesHandler
"""Symfony's name for PHP's files handler."""
