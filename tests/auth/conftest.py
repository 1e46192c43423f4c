"""Auth tests run against a real SMTP server, an OpenID provider and a GitHub look-alike."""

from collections.abc import Callable, Iterator

import pytest

from backend.config import Settings
from tests.support.peers import FakeGitHub, Recorded, SmtpSink, oidc_provider
from tests.support.settings import GENEROUS_LIMITS


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def google() -> Iterator[tuple[str, Recorded]]:
    with oidc_provider() as provider:
        yield provider


@pytest.fixture(scope="session")
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    smtp: SmtpSink,
    google: tuple[str, Recorded],
    github: FakeGitHub,
) -> Settings:
    return make_settings(
        smtp_url=smtp.url,
        oauth_google_client_id="devora-test",
        oauth_google_client_secret="google-secret",
        oauth_google_issuer=google[0],
        oauth_github_client_id="devora-gh",
        oauth_github_client_secret="github-secret",
        oauth_github_authorize_url=f"{github.base}/login/oauth/authorize",
        oauth_github_token_url=f"{github.base}/login/oauth/access_token",
        oauth_github_api_url=f"{github.base}/api",
        **GENEROUS_LIMITS,  # the limit tests set their own
    )
