"""
A Redis client for Twisted, the base of ratchetpy's scale-out.

- ``RedisConfig`` (``url.py``): ``redis://``, ``rediss://`` (TLS) and
  ``unix://`` URLs with user, password, database and key prefix.
- ``RedisClient`` (``client.py``): commands that fail fast while Redis is
  down, with a timeout per command and a bound on how many may wait;
  ``publish``, ``spublish``, ``evalsha_or_eval``, ``key``.
- ``Subscriber`` (``pubsub.py``): pub/sub on its own connection, reference
  counted per channel, resubscribed in batches after each reconnection.
- ``RedisLink`` (``link.py``): what both share: reconnection with jittered
  backoff (``Backoff``), AUTH/SELECT/CLIENT SETNAME, health PINGs, outage
  logging, ``RedisStats`` counters.
- ``RedisProtocol`` (``protocol.py``): RESP2 through hiredis.
- ``RedisClusterClient`` (``cluster.py``), ``ClusterSubscriber``
  (``cluster_pubsub.py``), ``SlotMap`` (``cluster_map.py``): a Redis
  Cluster (``redis+cluster://``): commands routed by slot, MOVED/ASK
  followed, each channel subscribed on its slot's shard.

Errors are ``RedisError`` and its subclasses in ``ratchetpy.exceptions``.
The asyncio reactor is not needed: this is plain Twisted.
"""

from ..exceptions import (
    RedisClusterError,
    RedisError,
    RedisProtocolError,
    RedisReplyError,
    RedisTimeout,
    RedisUnavailable,
)
from .backoff import Backoff
from .client import RedisClient
from .cluster import RedisClusterClient
from .cluster_map import SlotMap
from .cluster_pubsub import ClusterSubscriber
from .link import RedisLink
from .protocol import RedisProtocol
from .pubsub import MessageCallback, Subscriber
from .scripts import Script
from .slots import hash_slot
from .stats import RedisStats
from .url import RedisConfig, redact_url

__all__ = [
    "Backoff",
    "ClusterSubscriber",
    "MessageCallback",
    "RedisClient",
    "RedisClusterClient",
    "RedisClusterError",
    "RedisConfig",
    "RedisError",
    "RedisLink",
    "RedisProtocol",
    "RedisProtocolError",
    "RedisReplyError",
    "RedisStats",
    "RedisTimeout",
    "RedisUnavailable",
    "Script",
    "SlotMap",
    "Subscriber",
    "hash_slot",
    "redact_url",
]
