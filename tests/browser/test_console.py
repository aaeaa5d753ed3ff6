"""The operator console in a real browser (issue 13): what an operator does with it, checked in
the page (through roles and labels, so the accessibility labels are checked too), in the JSON API
and at the merchant's webhook receiver. Each test has its own cashout-local and saves a
full-page screenshot as target/browser/<test>.png (and <test>-<step>.png)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from playwright.sync_api import Locator, Page, expect

from conftest import Console
from harness import MERCHANT_KEY, OPERATORS, UNDER_REVIEW, Cashout, advanced, cashout_body, invoice, wait_for

ALICE = OPERATORS["alice"][1]
BOB = OPERATORS["bob"][1]
SIGN_IN_URL = re.compile(r"/console/sign-in(\?.*)?$")
OVER_THE_LIMIT = cashout_body([invoice("INV-1", "1000.00", "80"), invoice("INV-2", "500.00", "50")])  # 1050.00


def flash(page: Page, text: str) -> None:
    notice = page.locator("#flash")
    expect(notice).to_have_attribute("role", "status")
    expect(notice).to_contain_text(text)


def status_is(page: Page, status: str) -> None:
    expect(page.locator("#status")).to_contain_text(status)


def button(page: Page, name: str) -> Locator:
    return page.get_by_role("button", name=name, exact=True)


def operator(name: str) -> dict[str, str]:
    return {"type": "operator", "id": name}


def approvers(cashout: Cashout, request_id: str) -> list[str]:
    """Who has approved the request so far, as the API's request view says."""
    review = cashout.request(request_id).get("review") or {}
    return [a["operator"] for a in review.get("approvals", [])]


def test_an_operator_signs_in_and_out_and_a_merchant_key_cannot(console: Console) -> None:
    page = console.page()
    page.goto(console.url("/console"))
    expect(page).to_have_url(SIGN_IN_URL)
    key = page.get_by_label("Operator key")
    expect(key).to_have_attribute("type", "password")
    console.shot(page, "sign-in")

    for wrong in (MERCHANT_KEY, "sk_nobody"):
        key.fill(wrong)
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401, f"signing in with {wrong!r} answered {answer.value.status}"
        expect(page.get_by_role("alert")).to_contain_text("That key cannot sign in to the console")
        expect(page.get_by_role("link", name="Queue")).to_have_count(0)
    console.shot(page, "refused")

    console.sign_in(ALICE, page)
    header = page.get_by_text("Signed in as alice (reviewer)")
    expect(header).to_be_visible()
    for link in ("Queue", "Search", "Attention", "Providers"):
        expect(page.get_by_role("link", name=link, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    cookie = next((c for c in page.context.cookies() if c["name"] == "cashout_console"), None)
    assert cookie is not None, f"no cashout_console cookie: {page.context.cookies()}"
    assert cookie["httpOnly"], cookie
    assert cookie["sameSite"] == "Strict", cookie
    console.shot(page)

    button(page, "Sign out").click()
    expect(page).to_have_url(SIGN_IN_URL)
    page.goto(console.url("/console/queue"))
    expect(page).to_have_url(SIGN_IN_URL)

    # the session ended on the server: its cookie, kept by someone, opens nothing
    stolen = console.page()
    stolen.context.add_cookies([cookie])
    stolen.goto(console.url("/console/queue"))
    expect(stolen).to_have_url(SIGN_IN_URL)


def test_a_request_over_the_limit_needs_two_different_operators(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=2)
    receiver = cashout.webhook_receiver()
    request_id = cashout.create(OVER_THE_LIMIT)["id"]

    alice = console.sign_in(ALICE)
    console.open_request(alice, request_id)
    expect(alice.get_by_text("Approvals: 0 of 2")).to_be_visible()
    # the same request open in a second tab, as it was before alice's approval
    stale = alice.context.new_page()
    console.open_request(stale, request_id)

    button(alice, "Approve").click()
    flash(alice, "Approval recorded (1 of 2)")
    status_is(alice, UNDER_REVIEW)
    expect(alice.get_by_text("Approvals: 1 of 2")).to_be_visible()
    console.shot(alice, "first-approval")
    assert cashout.status(request_id) == UNDER_REVIEW
    assert approvers(cashout, request_id) == ["alice"]

    button(stale, "Approve").click()
    expect(stale.get_by_role("alert")).to_contain_text("has already approved")
    console.shot(stale, "same-operator-twice")
    assert cashout.status(request_id) == UNDER_REVIEW
    assert approvers(cashout, request_id) == ["alice"]

    bob = console.sign_in(BOB)
    console.open_request(bob, request_id)
    expect(bob.get_by_text("Approvals: 1 of 2")).to_be_visible()
    button(bob, "Approve").click()
    flash(bob, "Approved")
    expect(bob.locator("#status")).not_to_contain_text(UNDER_REVIEW)
    console.shot(bob)

    assert cashout.left_review(request_id) in ("APPROVED", "PENDING_PAYMENT", "PAID")
    assert approvers(cashout, request_id) == ["alice", "bob"]
    approved = receiver.status_update(request_id, "APPROVED")
    assert approved.get("actor") == operator("bob"), f"the approval's webhook names {approved.get('actor')}, not bob: {approved}"


def test_an_excluded_invoice_is_not_paid_and_the_merchant_is_told_the_new_amount(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    receiver = cashout.webhook_receiver()
    request_id = cashout.create(OVER_THE_LIMIT)["id"]
    expected = advanced(OVER_THE_LIMIT, leave_out=frozenset({"INV-2"}))
    assert expected == Decimal("800.00") and expected != advanced(OVER_THE_LIMIT)

    page = console.sign_in(ALICE)
    console.open_request(page, request_id)
    status_is(page, UNDER_REVIEW)
    console.shot(page, "detail")

    button(page, "Exclude INV-2").click()
    flash(page, "Invoice INV-2 excluded")
    wait_for(
        "the verified invoice_status_update of INV-2",
        lambda: [e for e in receiver.events(request_id, "cashout_request.invoice_status_update") if "INV-2" in json.dumps(e)],
    )
    button(page, "Approve").click()
    flash(page, "Approved")

    paid = receiver.status_update(request_id, "PAID")
    assert Decimal(paid["paid_amount"]) == expected, f"paid {paid['paid_amount']}, not {expected} (the request without INV-2): {paid}"
    approved = receiver.status_update(request_id, "APPROVED")
    assert approved.get("actor") == operator("alice"), approved
    page.reload()
    status_is(page, "PAID")
    console.shot(page)


def test_a_rejection_keeps_its_reason_and_reaches_the_merchant(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    receiver = cashout.webhook_receiver()
    request_id = cashout.create(OVER_THE_LIMIT)["id"]
    reason = "The payer disputes invoice INV-1"

    page = console.sign_in(ALICE)
    console.open_request(page, request_id)
    page.get_by_label("Reason").fill(reason)
    button(page, "Reject").click()
    flash(page, "Rejected")
    status_is(page, "REJECTED")
    expect(page.get_by_text(reason).first).to_be_visible()
    console.shot(page)

    assert cashout.status(request_id) == "REJECTED"
    rejected = receiver.status_update(request_id, "REJECTED")
    assert rejected.get("actor") == operator("alice"), rejected


def test_bulk_approval_answers_for_each_request(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    ids = [cashout.create(cashout_body([invoice(f"INV-B{n}", "2000.00", "80")]))["id"] for n in (1, 2, 3)]
    left_alone = cashout.create(cashout_body([invoice("INV-B4", "2000.00", "80")]))["id"]

    page = console.sign_in(ALICE)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    for request_id in ids:
        expect(page.get_by_role("link", name=request_id)).to_be_visible()
        page.get_by_role("checkbox", name=f"Select {request_id}").check()
    console.shot(page, "queue")

    button(page, "Approve selected").click()
    expect(page.get_by_role("heading", name="Bulk approval")).to_be_visible()
    for request_id in ids:
        expect(page.get_by_role("row").filter(has_text=request_id)).to_contain_text("Approved")
    console.shot(page)

    for request_id in ids:
        assert cashout.left_review(request_id) in ("APPROVED", "PENDING_PAYMENT", "PAID")
    expect(page.get_by_role("row").filter(has_text=left_alone)).to_have_count(0)
    assert cashout.status(left_alone) == UNDER_REVIEW


def test_a_form_post_without_the_csrf_token_changes_nothing(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    request_id = cashout.create(OVER_THE_LIMIT)["id"]
    refusal = "This form has expired or did not come from the console"

    page = console.sign_in(ALICE)
    console.open_request(page, request_id)
    # a forged token, posted with the session's cookie
    forged = page.request.post(console.url(f"/console/requests/{request_id}/approve"), form={"csrf": "forged"})
    assert forged.status == 403, f"a forged token answered {forged.status}"
    assert refusal in forged.text()

    # the page's own Approve form, its token taken out
    approve = button(page, "Approve")
    approve.locator("xpath=ancestor::form[1]").locator("input[name=csrf]").evaluate_all("inputs => inputs.forEach(i => i.remove())")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        approve.click()
    assert answer.value.status == 403, f"a form without its token answered {answer.value.status}"
    expect(page.get_by_role("alert")).to_contain_text(refusal)
    console.shot(page)

    assert cashout.status(request_id) == UNDER_REVIEW
    assert approvers(cashout, request_id) == [], "an approval was recorded without a token"

    # the sign-in form has its token too: a key posted from elsewhere opens no session
    elsewhere = console.page()
    signed = elsewhere.request.post(console.url("/console/sign-in"), form={"key": ALICE}, max_redirects=0)
    assert signed.status == 403, f"a sign-in post without the form's token answered {signed.status}"
    assert not [c for c in elsewhere.context.cookies() if c["name"] == "cashout_console" and c["value"]]


def test_the_queue_works_at_phone_width_and_200_percent_zoom(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    request_id = cashout.create(OVER_THE_LIMIT)["id"]
    # 200 % zoom of a 1280×800 window is a 640×400 CSS-pixel viewport at 2 device pixels each
    for name, options in (
        ("phone", {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}),
        ("zoom-200", {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}),
    ):
        page = console.sign_in(ALICE, **options)
        expect(page.get_by_role("link", name=request_id)).to_be_visible()
        width = options["viewport"]["width"]
        for control in (button(page, "Approve selected"), button(page, "Sign out")):
            control.scroll_into_view_if_needed()
            expect(control).to_be_visible()
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
                f"{name}: {control} lies outside the {width} px viewport: {box}"
            )
        scroll, client = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= client, f"{name}: the page scrolls sideways ({scroll} px of content in {client} px)"
        console.shot(page, name)
    console.shot(page)


def focus_is_visible(page: Page) -> bool:
    return page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; }"""
    )


def tab_to(page: Page, accessible: str, presses: int = 40) -> None:
    """Presses Tab until the focused element is the one named `accessible` (its aria-label or
    text), and checks that each control passed on the way shows where the focus is."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        name = page.evaluate("() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.trim()")
        assert focus_is_visible(page), f"the focus on {name!r} is not visible"
        if name == accessible:
            return
    raise AssertionError(f"{accessible!r} is not reached with Tab within {presses} presses")


def test_an_operator_works_the_queue_with_the_keyboard_alone(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    request_id = cashout.create(OVER_THE_LIMIT)["id"]

    page = console.page()
    page.goto(console.url("/console/sign-in"))
    expect(page.get_by_label("Operator key")).to_be_focused()
    page.keyboard.type(ALICE)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()

    tab_to(page, f"Select {request_id}")
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name=f"Select {request_id}")).to_be_checked()
    tab_to(page, "Approve selected")
    console.shot(page, "focus")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Bulk approval")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=request_id)).to_contain_text("Approved")
    console.shot(page)
    assert cashout.left_review(request_id) in ("APPROVED", "PENDING_PAYMENT", "PAID")


def test_the_search_finds_requests_by_status_and_id_and_every_page_of_the_header_opens(cashout: Cashout, console: Console) -> None:
    cashout.approval_policy(approvers=1)
    paid = cashout.create(cashout_body([invoice("INV-S1", "500.00", "80")]), expect_status="APPROVED")["id"]
    waiting = cashout.create(OVER_THE_LIMIT)["id"]
    wait_for(f"{paid} to be PAID", lambda: cashout.status(paid) == "PAID")

    page = console.sign_in(ALICE)
    page.get_by_role("link", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="Search requests")).to_be_visible()
    page.get_by_label("Status").select_option("PAID")
    page.get_by_label("Merchant").fill("merchant_local")
    page.get_by_label("Currency").fill("BRL")
    button(page, "Search").click()
    expect(page).to_have_url(re.compile(r"status=PAID"))
    expect(page.get_by_role("link", name=paid)).to_be_visible()
    expect(page.get_by_role("link", name=waiting)).to_have_count(0)
    console.shot(page)

    page.get_by_label("Status").select_option("")
    page.get_by_label("Request id").fill(waiting)
    button(page, "Search").click()
    expect(page.get_by_role("link", name=waiting)).to_be_visible()
    expect(page.get_by_role("link", name=paid)).to_have_count(0)

    page.get_by_label("Request id").fill("")
    page.get_by_label("Status").select_option("REJECTED")
    button(page, "Search").click()
    expect(page.get_by_role("status")).to_contain_text("No request matches.")

    for link, heading in (("Attention", "Attention"), ("Providers", "Providers"), ("Queue", "Review queue")):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        console.shot(page, link.lower())
