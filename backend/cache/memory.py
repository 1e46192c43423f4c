"""The cache backend inside one process, for when there is no Redis."""

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from backend.cache.keys import entry_key
from backend.cache.lru import ByteLRU

SWEEP_INTERVAL_S = 1.0


class MemoryCacheBackend:
    """The same contract inside one process, bounded in bytes: the least recently used entry
    goes first, and expired entries are swept at most once a second, read or not."""

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        max_scopes: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_scopes = max_scopes
        self._clock = clock
        self._entries = ByteLRU(max_bytes, clock=clock)
        self._versions: OrderedDict[str, str] = OrderedDict()
        self._swept_at = clock()

    @property
    def size(self) -> int:
        """Bytes of keys and values held."""
        return self._entries.size

    def _version(self, scope: str) -> str:
        version = self._versions.get(scope)
        if version is None:
            version = self._versions[scope] = secrets.token_hex(8)
            # Forgetting a scope's version only makes its entries unreachable: always safe.
            while len(self._versions) > self.max_scopes:
                self._versions.popitem(last=False)
        else:
            self._versions.move_to_end(scope)
        return version

    def _sweep(self) -> None:
        now = self._clock()
        if now - self._swept_at < SWEEP_INTERVAL_S:
            return
        self._swept_at = now
        self._entries.drop_expired(now)

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        self._sweep()
        version = self._version(scope)
        return version, self._entries.get(entry_key(scope, stem, version))

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        self._sweep()
        self._entries.put(entry_key(scope, stem, version), value, ttl_s)

    async def invalidate(self, scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            self._versions[scope] = secrets.token_hex(8)

    async def invalidate_prefix(self, prefix: str) -> int:
        scopes = [scope for scope in self._versions if scope.startswith(prefix)]
        await self.invalidate(tuple(scopes))
        return len(scopes)

    async def new_epoch(self) -> None:
        self._entries.clear()
