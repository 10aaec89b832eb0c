# -*- test-case-name: tests.phpws.test_jsauth -*-
"""
phpWebSocketServer's optional session check (``[jsauth]``).

A client passes when its request carries the PHP session cookie
(``PHPSESSID`` by default), the session file ``<save path>/sess_<id>``
exists, and the session holds ``key`` with a truthy value (as PHP's
``if ($_SESSION[key])``): the PHP application sets that key when it lets
the page connect. phpWebSocketServer checks browser-type clients only;
here every client is checked, since anyone can send ``Client-Type: php``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError, SessionError
from ..http.request import Request

__all__ = ["JsAuth", "php_truthy"]

_SESSION_ID = re.compile(r"[A-Za-z0-9,-]{1,256}\Z")


def php_truthy(value: Any) -> bool:
    """PHP's truthiness: ``""``, ``"0"``, 0, 0.0, ``false``, ``null`` and empty arrays are false."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value not in ("", "0")
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (dict, list, tuple)):
        return len(value) > 0
    return True


@dataclass(frozen=True)
class JsAuth:
    """
    The session check.

    Attributes:
        save_path: PHP's ``session.save_path`` (the ``ssp`` key), where the
            ``sess_<id>`` files are.
        key: the session key that must be truthy (``key``, e.g.
            ``allowconnect``).
        cookie_name: the session cookie (``cookie_name``; PHP's
            ``session.name``).
        serializer: PHP's ``session.serialize_handler`` (``php``,
            ``php_serialize``, ``php_binary``), ``None`` to detect it.
    """

    save_path: str
    key: str
    cookie_name: str = "PHPSESSID"
    serializer: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigurationError("jsauth needs the session key to check (key = allowconnect, say)")
        if not self.save_path or not os.path.isdir(self.save_path):
            raise ConfigurationError(
                f"jsauth: the session save path {self.save_path!r} is not a directory; "
                "set ssp to PHP's session.save_path"
            )
        if not self.cookie_name:
            raise ConfigurationError("jsauth: cookie_name must not be empty (PHP's default: PHPSESSID)")

    def check(self, request: Request) -> str | None:
        """
        ``None`` if ``request`` passes, else why not (for the log).

        Reads one small file; sessions are local files by design here.
        """
        session_id = request.cookies.get(self.cookie_name)
        if not session_id:
            return f"no {self.cookie_name} cookie"
        if not _SESSION_ID.match(session_id):
            return f"the {self.cookie_name} cookie is not a PHP session id"
        path = os.path.join(self.save_path, f"sess_{session_id}")
        try:
            with open(path, "rb") as f:
                data = f.read(1024 * 1024 + 1)
        except FileNotFoundError:
            return "no such session (expired, or never started)"
        except OSError as exc:
            return f"cannot read the session file ({exc.strerror})"
        from ..session.formats import decode_session

        try:
            session = decode_session(data, self.serializer)
        except SessionError as exc:
            return f"cannot decode the session ({exc})"
        if not isinstance(session, dict) or not php_truthy(session.get(self.key)):
            return f"the session's {self.key!r} is not set"
        return None
