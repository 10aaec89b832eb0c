"""Parsing ``twistd ratchetpy`` options in tests."""

from __future__ import annotations

import pytest

from ratchetpy.tap import Options


def parse(*args: str) -> Options:
    """``Options`` after parsing ``args`` (a mistake raises SystemExit)."""
    options = Options()
    options.parseOptions(list(args))
    return options


def error(*args: str) -> str:
    """The one-line error ``args`` end with (asserted to be one line)."""
    with pytest.raises(SystemExit) as caught:
        parse(*args)
    message = str(caught.value.code)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("twistd ratchetpy: error: "), message
    return message
