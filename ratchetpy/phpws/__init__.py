"""
phpWebSocketServer compatibility: its browser and PHP clients, its
resource classes and its ini files, on ratchetpy.

- :class:`PhpWsServer`: the ``phpws`` route target (``ratchetpy.phpws.server``);
- :class:`PhpWsResource`, :class:`DefaultResource`: resource classes
  (``ratchetpy.phpws.resource``);
- :class:`PhpWsSettings`, :class:`JsAuth`: admission, pings, pacing and the
  session check;
- ``ratchetpy.phpws.ini``: reading its ``websock.ini`` / ``config.ini``.

See docs/phpws.md.
"""

from __future__ import annotations

from .clients import PhpWsClient, PhpWsClients, clients_for
from .jsauth import JsAuth
from .packets import NEXT, close_packet, php_json_encode, ready_packet
from .resource import DefaultResource, PhpWsResource
from .server import PhpWsServer
from .settings import PhpWsSettings

__all__ = [
    "NEXT",
    "DefaultResource",
    "JsAuth",
    "PhpWsClient",
    "PhpWsClients",
    "PhpWsResource",
    "PhpWsServer",
    "PhpWsSettings",
    "clients_for",
    "close_packet",
    "php_json_encode",
    "ready_packet",
]
