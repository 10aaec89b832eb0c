"""
``php-cli`` as the tests' independent PHP: it writes the sessions the
SessionProvider reads and plays phpWebSocketServer's PHP clients.

Needs Debian's ``php-cli`` (and ``php-redis``/``php-memcached`` for those
session handlers); without them a test skips, or fails in CI
(``tests/support/ci.py``). ``.ci/run`` installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

from tests.support.ci import require_tool
from tests.support.timing import seconds

PHP = shutil.which("php")

__all__ = ["PHP", "php_modules", "require_php", "run_php"]

_modules: frozenset[str] | None = None


def php_modules() -> frozenset[str]:
    """The extensions ``php -m`` lists, lower-cased (empty without PHP)."""
    global _modules
    if _modules is None:
        if PHP is None:
            return frozenset()
        listed = subprocess.run([PHP, "-m"], capture_output=True, text=True, timeout=30).stdout
        _modules = frozenset(
            line.strip().lower() for line in listed.splitlines() if line and not line.startswith("[")
        )
    return _modules


def require_php(*extensions: str) -> None:
    """Skip (fail in CI) unless ``php`` and each named extension (``"redis"``) are there."""
    __tracebackhide__ = True
    require_tool(PHP is not None, "php-cli is not installed", "apt-get install php-cli")
    missing = [name for name in extensions if name.lower() not in php_modules()]
    require_tool(
        not missing,
        f"PHP extension(s) {', '.join(missing)} missing",
        "apt-get install " + " ".join(f"php-{name}" for name in missing),
    )


def run_php(
    code: str,
    *,
    ini: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    stdin: bytes | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """
    Run ``code`` (a whole script, ``<?php`` included) as ``php -d k=v ... script args``.

    The script is written to a temporary file so ``stdin`` stays free for
    the script. Raises AssertionError with PHP's output when PHP exits
    non-zero and ``check`` is true, so a failing script shows why.
    """
    require_php()
    assert PHP is not None
    command = [PHP, "-d", "display_errors=stderr", "-d", "error_reporting=-1"]
    for key, value in (ini or {}).items():
        if any(c in value for c in '=;&|"') and not value.startswith('"'):
            # php -d parses the value as ini syntax: quote what it would misread
            value = '"' + value + '"'
        command += ["-d", f"{key}={value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".php", prefix="ratchetpy-test-") as script:
        script.write(code)
        script.flush()
        done = subprocess.run(
            [*command, script.name, *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=seconds(timeout),
        )
    if check and done.returncode != 0:
        raise AssertionError(
            f"php exited {done.returncode}:\nstdout: {done.stdout.decode(errors='replace')}\n"
            f"stderr: {done.stderr.decode(errors='replace')}"
        )
    return done
