"""A map bounded in bytes, least recently used out first, whose entries also expire."""

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class ByteLRU:
    """Values by key, bounded in the bytes of keys and values held: the least recently used
    entry goes first. An entry expires after its TTL, and never later than `max_age_s`."""

    def __init__(
        self,
        max_bytes: int,
        *,
        max_age_s: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.size = 0  # bytes of keys and values held

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, value = found
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if self.max_bytes <= 0:
            return  # nothing fits: an entry would only be evicted again at once
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + min(ttl_s, self.max_age_s), value)
        self.size += len(key) + len(value)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def drop_expired(self, now: float) -> None:
        """Drop every entry expired at `now`, read or not."""
        for key in [key for key, (expires_at, _) in self._entries.items() if expires_at <= now]:
            self._drop(key)

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(key) + len(value)
