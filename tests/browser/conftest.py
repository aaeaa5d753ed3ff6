"""The fixtures of the browser tests: one Chromium for the run (Debian's, through its executable
path), and per test a cashout-local of its own and a `Console` that opens signed-in browser
contexts on it and saves screenshots under target/browser/. Run by scripts/browser-test, which
installs everything and sets BROWSER_TEST_BINARY and BROWSER_TEST_CHROMIUM."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from harness import ROOT, Cashout

SHOTS = ROOT / "target" / "browser"
TIMEOUT_MS = 10_000
# a desktop window wide enough for the queue's table (narrow widths have a test of their own)
DESKTOP = {"width": 1440, "height": 900}
expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    chromium = os.environ.get("BROWSER_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        pytest.fail("no chromium on PATH (scripts/browser-test installs Debian's)")
    with sync_playwright() as p:
        # the system browser: Playwright's own download cannot be fetched here
        browser = p.chromium.launch(executable_path=chromium, args=["--no-proxy-server"])
        yield browser
        browser.close()


@pytest.fixture
def cashout(request: pytest.FixtureRequest) -> Iterator[Cashout]:
    binary = os.environ.get("BROWSER_TEST_BINARY") or str(ROOT / "target" / "release" / "cashout-local")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no cashout-local at {binary} (BROWSER_TEST_BINARY)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    runner = Cashout(binary, SHOTS / f"{request.node.name}.cashout-local.log")
    yield runner
    runner.stop()


class Console:
    """The console of one test's cashout-local, seen from browser contexts of that test."""

    def __init__(self, browser: Browser, cashout: Cashout, test: str) -> None:
        self.browser = browser
        self.base = cashout.base
        self.test = test
        self.contexts: list[BrowserContext] = []

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def page(self, **options: Any) -> Page:
        """A page in a new browser context (its own cookies: another person)."""
        context = self.browser.new_context(**{"viewport": DESKTOP, **options})
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        return context.new_page()

    def sign_in(self, key: str, page: Page | None = None, **options: Any) -> Page:
        page = page or self.page(**options)
        page.goto(self.url("/console/sign-in"))
        page.get_by_label("Operator key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/console/queue(\?.*)?$"))
        return page

    def open_request(self, page: Page, request_id: str) -> None:
        page.goto(self.url(f"/console/requests/{request_id}"))
        expect(page.get_by_role("heading", name=f"Request {request_id}")).to_be_visible()

    def shot(self, page: Page, step: str | None = None) -> Path:
        """A full-page screenshot: target/browser/<test>.png, or <test>-<step>.png."""
        path = SHOTS / (f"{self.test}-{step}.png" if step else f"{self.test}.png")
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def console(browser: Browser, cashout: Cashout, request: pytest.FixtureRequest) -> Iterator[Console]:
    console = Console(browser, cashout, request.node.name)
    yield console
    report = getattr(request.node, "report_call", None)
    for n, context in enumerate(console.contexts):
        if report is not None and report.failed:
            for k, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(SHOTS / f"{console.test}-failed-{n}-{k}.png"), full_page=True)
                except Exception:  # a crashed page: the failure itself says more
                    pass
        context.close()
