"""Rate-limit counts taken in the cache's lookup round trip."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counter:
    """A rate-limit counter to count in the same round trip: its Redis key and window.

    The lookup script counts it as the `limits` library's fixed window does (INCRBY, then
    EXPIRE when new), so a count taken there and one taken by `limits` itself share a key.
    """

    key: str
    window_s: int
