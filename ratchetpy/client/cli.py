# -*- test-case-name: tests.client.test_cli -*-
"""
``python -m ratchetpy.client URL``: a WebSocket client on the command line.

Interactive (like wscat): each line read from stdin is sent as a text
message, each message received is printed on its own line (binary ones as
``base64:<data>``). End of input closes the connection with 1000.

One-shot, for shell scripts: ``--send TEXT`` sends one message and closes;
with ``--expect-reply`` it first waits (``--timeout`` seconds) for one
message and prints it.

Exit codes:

- 0: done (input ended, or the one-shot succeeded);
- 1: could not connect: refused, TLS, a non-101 answer, a refused
  subprotocol, a missing ``ratchetpy[client]`` extra;
- 2: bad command line;
- 3: a timeout: TCP connect, handshake, or no reply within ``--timeout``;
- 4: the server closed the connection (before the reply, or while
  interactive).

Errors are one line on stderr starting with ``ratchetpy.client:``.
"""

from __future__ import annotations

import argparse
import base64
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from ..exceptions import ClientError, ClientTimeout, ConfigurationError, ConnectionClosed

__all__ = ["main", "EXIT_OK", "EXIT_CONNECT", "EXIT_USAGE", "EXIT_TIMEOUT", "EXIT_CLOSED"]

EXIT_OK = 0
EXIT_CONNECT = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_CLOSED = 4

PROG = "python -m ratchetpy.client"


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ratchetpy.client: {message} (see {PROG} --help)\n")


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    p = _Parser(
        prog=PROG,
        description="Send and print WebSocket messages (stdin lines out, messages in).",
        epilog="exit codes: 0 ok, 1 connect failed, 2 usage, 3 timeout, 4 closed by the server",
    )
    p.add_argument("url", help="ws://host:port/path or wss://...")
    p.add_argument(
        "-H", "--header", type=_header, action="append", default=[],
        metavar="'NAME: VALUE'", help="an extra request header (repeatable)",
    )
    p.add_argument(
        "-s", "--subprotocol", action="append", default=[], metavar="NAME",
        help="offer this subprotocol (repeatable); the server must pick one",
    )
    p.add_argument("-o", "--origin", help="the Origin header")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--ca", metavar="FILE", help="wss://: trust the CAs in this PEM file")
    trust.add_argument(
        "-k", "--insecure", action="store_true",
        help="wss://: check neither the certificate nor the host name",
    )
    p.add_argument(
        "--connect-timeout", type=_seconds, default=10.0, metavar="S",
        help="seconds for TCP and for the handshake, each (default 10)",
    )
    p.add_argument("--send", metavar="TEXT", help="send TEXT, then close (one-shot)")
    p.add_argument(
        "--expect-reply", action="store_true",
        help="with --send: wait for one message and print it",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="S",
        help="with --expect-reply: seconds to wait for it (default 10)",
    )
    return p


def _print(message: str | bytes, out: IO[str]) -> None:
    if isinstance(message, bytes):
        message = "base64:" + base64.b64encode(message).decode("ascii")
    out.write(message + "\n")
    out.flush()


def _fail(code: int, message: str, err: IO[str]) -> int:
    err.write(f"ratchetpy.client: {message}\n")
    err.flush()
    return code


def main(
    argv: Sequence[str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the command line; returns the exit code (see the module docs)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = parser().parse_args(argv)
    if args.expect_reply and args.send is None:
        return _fail(EXIT_USAGE, "--expect-reply needs --send TEXT", stderr)
    from .sync import connect

    try:
        ws = connect(
            args.url,
            subprotocols=args.subprotocol,
            headers=dict(args.header),
            origin=args.origin,
            connect_timeout=args.connect_timeout,
            handshake_timeout=args.connect_timeout,
            ca_file=args.ca,
            insecure=args.insecure,
        )
    except ConfigurationError as exc:
        return _fail(EXIT_USAGE, str(exc), stderr)
    except ClientTimeout as exc:
        return _fail(EXIT_TIMEOUT, str(exc), stderr)
    except ClientError as exc:
        return _fail(EXIT_CONNECT, str(exc), stderr)
    with ws:
        if args.send is not None:
            return _one_shot(ws, args, stdout, stderr)
        return _interactive(ws, stdin, stdout, stderr)


def _one_shot(ws: Any, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        ws.send(args.send)
        if args.expect_reply:
            _print(ws.recv(timeout=args.timeout), out)
    except TimeoutError:
        return _fail(EXIT_TIMEOUT, f"no reply within {args.timeout:g} s", err)
    except ConnectionClosed as exc:
        return _fail(EXIT_CLOSED, f"the server closed the connection: {exc.code} {exc.reason}".rstrip(), err)
    return EXIT_OK


def _interactive(ws: Any, stdin: IO[str], out: IO[str], err: IO[str]) -> int:
    we_closed = threading.Event()

    def pump() -> None:
        # stdin is read in a daemon thread: a blocking read cannot be
        # interrupted, and the process must end when the server closes.
        try:
            for line in stdin:
                ws.send(line.rstrip("\r\n"))
        except ConnectionClosed:
            return
        we_closed.set()
        ws.close()

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    try:
        while True:
            _print(ws.recv(), out)
    except ConnectionClosed as exc:
        if we_closed.is_set():
            return EXIT_OK
        return _fail(EXIT_CLOSED, f"the server closed the connection: {exc.code} {exc.reason}".rstrip(), err)
