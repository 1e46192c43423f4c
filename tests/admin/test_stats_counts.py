"""`/admin/stats` counts are integers on the wire."""

import httpx

from tests.support.factories import bearer, login, signed_up
from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD


async def test_cache_hits_and_misses_are_integers(client: httpx.AsyncClient) -> None:
    root = bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    _, headers = await signed_up(client)
    for _ in range(3):  # a miss, then hits
        assert (await client.get("/api/v2/auth/me", headers=headers)).status_code == 200
    stats = await client.get("/api/v2/admin/stats", headers=root)
    cache = stats.json()["cache"]
    assert stats.status_code == 200
    assert type(cache["hits"]) is int and type(cache["misses"]) is int
    assert cache["hits"] + cache["misses"] >= 3
