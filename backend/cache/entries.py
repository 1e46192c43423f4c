"""The registry of cached things: each has a name, and a TTL setting named after it."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached thing; its TTL is the setting `CACHE_TTL_<NAME>`."""

    name: str


class CacheConfig:
    """Every cached thing by name. Default TTLs live in `Settings` (`cache_ttl_*`)."""

    PROJECT_LIST = CacheEntry("project_list")
    PROJECT = CacheEntry("project")
    USER = CacheEntry("user")
    INVOICES = CacheEntry("invoices")
    PLANS = CacheEntry("plans")
    ADMIN_STATS = CacheEntry("admin_stats")
