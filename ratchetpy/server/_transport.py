"""The type of the transports ratchetpy's protocols run on, for annotations."""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer, ITransport

__all__ = ["IStreamTransport"]


class IStreamTransport(ITransport, IPushProducer):
    """
    What ratchetpy uses of a connection's transport: ``ITransport``, plus
    ``abortConnection()`` and the push-producer calls that pause reading.

    Twisted's TCP, TLS and UNIX server transports all have these, but no
    single Twisted interface says so (``abortConnection`` is in
    ``ITCPTransport``, which UNIX transports do not declare). This interface
    exists for type checkers only: no transport declares it, so never test
    ``IStreamTransport.providedBy(...)``.
    """

    def abortConnection() -> None:
        """Close the connection at once, discarding what is buffered."""
