"""Projects tests: an app with generous limits and two signed-in users."""

from collections.abc import Callable

import httpx
import pytest

from backend.config import Settings
from tests.support.factories import signed_up
from tests.support.settings import GENEROUS_LIMITS


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**GENEROUS_LIMITS)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]
