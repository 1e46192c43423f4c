"""Where the cache keeps things, by the same names in Redis and in process."""

VERSION_TTL_S = 7 * 24 * 3600  # longer than any entry's TTL
EPOCH_KEY = "cache:epoch"


def entry_key(scope: str, stem: str, version: str) -> str:
    # `{scope}` is a cluster hash tag: an entry lives on the same node as its version key.
    return f"cache:{{{scope}}}:{stem}:{version}"


def version_key(scope: str) -> str:
    return f"cachever:{{{scope}}}"
