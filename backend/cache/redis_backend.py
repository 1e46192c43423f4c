"""The cache backend on Redis: one Lua script reads versions and values in one round trip."""

import secrets
import typing

from redis.asyncio import Redis

from backend.cache.counters import Counter
from backend.cache.keys import EPOCH_KEY, VERSION_TTL_S, entry_key, version_key
from backend.redis_batch import ScriptBatcher
from backend.unique_ids import UniqueIds

# One round trip at the start of a request, or for one lookup. KEYS[1]: a rate-limit counter
# to count ('' for none), KEYS[2]: the epoch, KEYS[3..]: one version key per scope. ARGV[1]:
# the counter's window, ARGV[2]: a fresh token, ARGV[3]: the TTL of versions, ARGV[4..]: per
# scope, the key prefix of an entry to read with it ('' for the version alone). The counter is
# the `limits` library's fixed window (its incr_expire.lua): INCRBY, then EXPIRE when new.
# Returns {count, suffix_1, value_1, suffix_2, value_2, ...}.
_LOOKUP = """
local function current(key)
  local value = redis.call('GET', key)
  if value then return value end
  redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
  return ARGV[2]
end
local count = 0
if KEYS[1] ~= '' then
  count = redis.call('INCRBY', KEYS[1], 1)
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
end
local epoch = current(KEYS[2])
local out = {count}
for i = 3, #KEYS do
  local suffix = epoch .. '.' .. current(KEYS[i])
  local value = false
  if ARGV[i + 1] ~= '' then value = redis.call('GET', ARGV[i + 1] .. ':' .. suffix) end
  out[#out + 1] = suffix
  out[#out + 1] = value
end
return out
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisCacheBackend:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._lookup = ScriptBatcher(redis, redis.register_script(_LOOKUP))
        self._tokens = UniqueIds(prefix_chars=8)

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        _, found = await self.lookup_many({scope: stem})
        return found[scope]

    async def lookup_many(
        self, stems: dict[str, str | None], counter: Counter | None = None
    ) -> tuple[int, dict[str, tuple[str, bytes | None]]]:
        """Count `counter`, then each scope's key suffix and the value of its stem (if any)."""
        scopes = list(stems)
        reply = await self._lookup(
            [counter.key if counter else "", EPOCH_KEY, *map(version_key, scopes)],
            [
                counter.window_s if counter else 0,
                self._tokens.new(),  # used only where a version is missing
                VERSION_TTL_S,
                # `entry_key` without its version: the script appends the suffix it reads.
                *(f"cache:{{{scope}}}:{stem}" if stem else "" for scope, stem in stems.items()),
            ],
        )
        found = {
            scope: (_text(reply[1 + 2 * n]), reply[2 + 2 * n]) for n, scope in enumerate(scopes)
        }
        return int(reply[0]), found

    async def get(self, key: str) -> bytes | None:
        return typing.cast(bytes | None, await self.redis.get(key))

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        await self.redis.set(entry_key(scope, stem, version), value, ex=ttl_s)

    async def invalidate(self, scopes: tuple[str, ...]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.set(version_key(scope), secrets.token_hex(8), ex=VERSION_TTL_S)
            await pipe.execute()

    async def invalidate_prefix(self, prefix: str) -> int:
        """Replace the version of every scope starting with `prefix`; scans, so admin only."""
        count = 0
        async for key in self.redis.scan_iter(match=f"cachever:{{{prefix}*", count=500):
            await self.redis.set(key, secrets.token_hex(8), ex=VERSION_TTL_S)
            count += 1
        return count

    async def new_epoch(self) -> None:
        await self.redis.set(EPOCH_KEY, secrets.token_hex(8), ex=VERSION_TTL_S)
