"""The ratchetpy version, and the Ratchet version whose behaviour it follows."""

from __future__ import annotations

__all__ = ["__version__", "VERSION", "RATCHET_COMPAT"]

__version__ = "0.1.0"

VERSION = f"ratchetpy/{__version__}"
"""Sent as ``X-Powered-By`` by default (Ratchet sends ``Ratchet/0.4.4``)."""

RATCHET_COMPAT = "Ratchet/0.4.4"
"""The PHP Ratchet release whose wire behaviour ratchetpy reproduces."""
