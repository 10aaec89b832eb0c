"""
PHP sessions in ratchetpy: Ratchet's ``SessionProvider`` and what it reads
(the PHP application's session stores, serializers and Laravel's cookie).
"""

from __future__ import annotations

__all__: list[str] = []
