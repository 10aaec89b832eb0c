"""
Fixtures shared by every test; the helpers behind them are in tests/support/.

    free_port   a TCP port free on 127.0.0.1
    twistd      start ``twistd -n ratchetpy ARGS`` (a ``Twistd``); killed after the test
    tls_files   (cert.pem, key.pem) for "localhost" and 127.0.0.1, in tmp_path
    logged      every Twisted log event emitted during the test
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from tests.support import processes
from tests.support.processes import Twistd
from tests.support.tls import self_signed


@pytest.fixture
def free_port() -> int:
    return processes.free_port()


@pytest.fixture
def twistd(tmp_path: Path) -> Iterator[Callable[..., Twistd]]:
    """``twistd("--route", "/chat", port=..., listen=True)`` starts one; ``.wait_listening()`` waits for it."""
    started: list[Twistd] = []

    def start(*args: str, **kwargs: Any) -> Twistd:
        process = Twistd(tmp_path, *args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    return self_signed(tmp_path)


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)
