"""Projects tests: an app with generous limits and two signed-in users."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.conftest import GENEROUS_LIMITS
from tests.factories import signed_up


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**GENEROUS_LIMITS)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


async def create_project(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v2/projects", json={"name": "Demo", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())
