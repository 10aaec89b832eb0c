"""
A component for the publish API tests: it sends each client its ``conn.id``
as the first message, so a test can hand that id to a backend.

``?user=NAME`` binds the connection to a user, ``?room=NAME`` joins a
channel (both through ``conn.hub``). ``register_with_hub`` makes
``App.route`` and ``twistd --route`` register every connection.
"""

from __future__ import annotations

from typing import Any

from tests.support.components import ClosesOnError


class IdFirst(ClosesOnError):
    register_with_hub = True

    def on_open(self, conn: Any) -> None:
        query = conn.http_request.query
        if query.get("user"):
            conn.hub.bind(conn, query["user"])
        if query.get("room"):
            conn.hub.join(conn, query["room"])
        conn.send(conn.id)
