"""Swagger UI and ReDoc in a real browser (Debian's Chromium, driven by Playwright), and the
TypeScript client inside a page of the frontend's origin — how the React app will use it.
Screenshots land in `test-artifacts/` (git-ignored)."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from api_v2.spec import TAGS
from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.typescript_client import build_client

ROOT = Path(__file__).resolve().parents[2]
# A loaded 2-core machine renders the 12,000-line spec in ReDoc in more than the default 5 s.
expect.set_options(timeout=30_000)
ARTIFACTS = ROOT / "test-artifacts"
EXPECTED = re.compile(
    r"^Loading the image 'https://cdn\.redoc\.ly/redoc/logo-mini\.svg'"
    r"|^Failed to load resource: the server responded with a status of 40[19] "
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Playwright's own browser download cannot work here: it drives the system Chromium."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        # ReDoc's bundle hard-codes its vendor logo from a CDN: the CSP blocking it is right.
        # The example provokes a 409 and 401s on purpose; Chromium logs each one.
        if message.type == "error" and not EXPECTED.search(message.text):
            problems.append(message.text)

    page.on("console", watch)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    # A CSP that blocked a script or a style, or a script that threw, fails the test.
    assert not problems, problems


STATUS = ".live-responses-table tbody .response-col_status"
BODY = ".live-responses-table tbody .microlight"


def operation(page: Page, tag: str, operation_id: str) -> Locator:
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    return block


def test_swagger_ui_authorizes_and_tries_protected_calls(live_api: str, page: Page) -> None:
    page.goto(f"{live_api}/docs")
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input#oauth_username").fill(ADMIN_EMAIL)
    dialog.locator("input#oauth_password").fill(ADMIN_PASSWORD)
    dialog.locator(".auth-btn-wrapper button.authorize").click()
    expect(dialog.get_by_role("heading", name="Authorized")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "swagger-authorized.png")
    dialog.get_by_role("button", name="Close").click()

    me = operation(page, "auth", "get_me")
    me.get_by_role("button", name="Execute").click()
    expect(me.locator(STATUS).first).to_have_text("200")
    expect(me.locator(BODY).first).to_contain_text(ADMIN_EMAIL)
    me.screenshot(path=ARTIFACTS / "swagger-get-me.png")

    create = operation(page, "projects", "create_project")
    create.locator("textarea.body-param__text").fill('{"name": "From Swagger UI"}')
    create.get_by_role("button", name="Execute").click()
    expect(create.locator(STATUS).first).to_have_text("201")
    expect(create.locator(BODY).first).to_contain_text("From Swagger UI")
    create.screenshot(path=ARTIFACTS / "swagger-create-project.png")


def test_redoc_renders_every_tag(live_api: str, page: Page) -> None:
    page.goto(f"{live_api}/redoc")
    menu = page.locator(".menu-content")
    for tag in TAGS:
        expect(menu.get_by_role("menuitem", name=tag["name"], exact=True)).to_be_visible()
    expect(page.get_by_text("Devora is a SaaS").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "redoc.png", full_page=False)


def test_the_client_runs_in_a_frontend_page(
    live_api: str, frontend_origin: str, page: Page
) -> None:
    build_client()
    page.goto(f"{frontend_origin}/?api={live_api}")
    result = page.evaluate("window.quickstartResult")
    assert "error" not in result, result
    assert result["refreshes"] == 1 and result["sessionEnded"] == "token_reused"
    ids = [event["id"] for event in result["events"]]
    assert ids == list(range(1, len(ids) + 1)) and result["finalStatus"] == "succeeded"
    expect(page.locator("#log")).to_contain_text("job ended: succeeded")
    page.screenshot(path=ARTIFACTS / "client-in-browser.png", full_page=True)
