"""The merchant portal in a real browser (issue 14): a merchant's system mints a portal link with
its API key, a person opens it, adds an endpoint that a Standard Webhooks receiver verifies, sends
it a test event, and after an outage of the receiver recovers what it missed, each event exactly
once. Checked in the page (through roles and labels), at the receiver and in the attempt log.
Screenshots are saved as target/browser/<test>-<step>.png."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from playwright.sync_api import Page, expect

from conftest import Console
from harness import MERCHANT_KEY, Cashout, Receiver, cashout_body, invoice, wait_for

EXPIRED = "This portal link has expired or was already used. Ask for a new one."
PORTAL_URL = re.compile(r"/portal$")


def portal_link(cashout: Cashout) -> str:
    link = cashout.expect(201, "POST", "/v1/portal-sessions", MERCHANT_KEY)
    assert link["url"].startswith(f"{cashout.base}/portal/enter?token="), link
    return link["url"]


def enter(console: Console, cashout: Cashout, **options: Any) -> Page:
    """A new browser context that opened a fresh portal link."""
    page = console.page(**options)
    page.goto(portal_link(cashout))
    expect(page).to_have_url(PORTAL_URL)
    expect(page.get_by_role("heading", name="Webhook endpoints")).to_be_visible()
    return page


def flash(page: Page, text: str) -> None:
    notice = page.locator("#flash")
    expect(notice).to_have_attribute("role", "status")
    expect(notice).to_contain_text(text)


def attempts(cashout: Cashout, endpoint_id: str) -> list[dict[str, Any]]:
    """Every attempt in the endpoint's log, through the API's pages."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = cashout.expect(200, "GET", f"/v1/webhook-endpoints/{endpoint_id}/attempts?limit=100{cursor}", MERCHANT_KEY)
        found += page["data"]
        if not page.get("next_cursor"):
            return found
        cursor = f"&cursor={page['next_cursor']}"


def test_a_portal_link_opens_once_and_its_cookie_is_strict(cashout: Cashout, console: Console) -> None:
    link = portal_link(cashout)
    page = console.page()
    page.goto(link)
    expect(page).to_have_url(PORTAL_URL)
    expect(page.get_by_text("Signed in as merchant_local")).to_be_visible()
    for name in ("Endpoints", "Cashout requests"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    cookie = next((c for c in page.context.cookies() if c["name"] == "cashout_portal"), None)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/portal", cookie

    other = console.page()
    answer = other.goto(link)
    assert answer is not None and answer.status == 401, "a used link opens nothing"
    expect(other.get_by_role("alert")).to_have_text(EXPIRED)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have left the merchant portal")
    answer = page.goto(cashout.base + "/portal")
    assert answer is not None and answer.status == 401


def test_a_merchant_adds_an_endpoint_tests_it_and_recovers_an_outage_exactly_once(cashout: Cashout, console: Console) -> None:
    receiver = Receiver()
    cashout.receivers.append(receiver)
    page = enter(console, cashout)

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Ledger")
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret")
    expect(secret).to_contain_text("whsec_")
    receiver.secret = secret.inner_text().strip()
    console.shot(page, "added")
    page.goto(cashout.base + "/portal")
    expect(page.locator("#new-secret")).to_have_count(0)

    page.get_by_role("link", name=receiver.url).click()
    heading = page.get_by_role("heading", name=re.compile(r"^Endpoint ep_"))
    expect(heading).to_be_visible()
    endpoint_id = heading.inner_text().removeprefix("Endpoint ").strip()

    page.get_by_role("button", name="Send test event").click()
    flash(page, "Test event delivered: HTTP 200 in")
    wait_for("the verified test event", lambda: any(p.get("event") == "webhook_endpoint.test" for p in list(receiver.verified)))

    # The outage: every delivery fails while requests are created (and the simulator pays them).
    began = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    receiver.down = True
    created = [
        cashout.create(cashout_body([invoice(f"OUT-{n}", f"{100 + n}.00", "50")]), expect_status=None)["id"]
        for n in range(3)
    ]

    def missed_each_created() -> bool:
        with receiver.lock:
            missed = set(receiver.missed)
        return all(any(m.startswith(f"evt_{r.replace('-', '')}_") for m in missed) for r in created)

    wait_for(f"the receiver to miss the creation of each of {created}", missed_each_created)
    receiver.down = False

    page.get_by_label("Recover since (UTC)").fill(began.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Recover", exact=True).click()
    flash(page, "queued for redelivery")

    with receiver.lock:
        missed = set(receiver.missed)

    def all_recovered() -> bool:
        with receiver.lock:
            return missed <= set(receiver.ids)

    wait_for(f"every missed webhook-id verified (missed {sorted(missed)}, refused {receiver.refused})", all_recovered)
    with receiver.lock:
        twice = [i for i, n in Counter(receiver.ids).items() if n > 1]
        refused = list(receiver.refused)
    assert not twice, f"delivered more than once: {twice}"
    assert not refused, f"deliveries that did not verify: {refused}"
    # The log agrees: no event was delivered twice to this endpoint (the retries still due
    # after the outage join the recovery's chain of attempt numbers and cannot send again).
    log = attempts(cashout, endpoint_id)
    delivered = Counter(a["event_id"] for a in log if a["outcome"] == "delivered")
    assert all(n == 1 for n in delivered.values()), f"delivered twice in the log: {delivered}"
    assert missed <= set(delivered), f"missed but not delivered per the log: {missed - set(delivered)}"

    page.reload()
    expect(page.get_by_role("region", name="Attempts, newest first")).to_contain_text("delivered")
    console.shot(page, "endpoint")

    page.get_by_role("link", name="Cashout requests", exact=True).click()
    expect(page.get_by_role("heading", name="Cashout requests")).to_be_visible()
    console.shot(page, "requests")
    page.get_by_role("link", name=created[0]).click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("ol.timeline")).to_contain_text("Webhook delivery")
    console.shot(page, "request")

    page.get_by_role("link", name="Endpoints", exact=True).click()
    expect(page.get_by_role("region", name="Endpoints")).to_contain_text("Enabled")
    console.shot(page, "endpoints")


def test_the_portal_works_at_phone_width(cashout: Cashout, console: Console) -> None:
    cashout.webhook_receiver()
    page = enter(console, cashout, viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True)
    for control in (page.get_by_role("button", name="Add endpoint"), page.get_by_role("button", name="Sign out")):
        control.scroll_into_view_if_needed()
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375.5, f"{control} outside 375 px: {box}"
    scroll, client = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"the page scrolls sideways ({scroll} px of content in {client} px)"
    console.shot(page, "phone")
