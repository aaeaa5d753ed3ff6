"""What the browser tests drive besides the browser: a cashout-local of their own (free ports, a
fresh data directory), its JSON API with a key, and a Standard Webhooks receiver in this process
that verifies every delivery with the official library and keeps the verified payloads.

Nothing here sleeps to synchronise: `wait_for` polls an observable condition until a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"cashout listening on http://(\S+)")
START_TIMEOUT = float(os.environ.get("BROWSER_TEST_START_TIMEOUT", "30"))
# how long the simulators may take to pay or reject (they do it within seconds locally)
SETTLE_TIMEOUT = float(os.environ.get("BROWSER_TEST_SETTLE_TIMEOUT", "30"))

MERCHANT_KEY = "sk_browser_merchant"
ADMIN_KEY = "sk_browser_admin"  # the admin operator `local`
# name → (role, key): two reviewers, so that four-eyes can be tried
OPERATORS = {"alice": ("reviewer", "sk_browser_alice"), "bob": ("reviewer", "sk_browser_bob")}
UNDER_REVIEW = "UNDER_REVIEW"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = SETTLE_TIMEOUT) -> T:
    """Polls `probe` until it gives something truthy; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f} s, still waiting for {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# The JSON API


class ApiError(AssertionError):
    pass


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(base: str, method: str, path: str, key: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One API call with `Authorization: Bearer key`; the status and the parsed JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _opener.open(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def invoice(invoice_id: str, amount: str, advance_percentage: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "payer": {"tax_id": "11222333000181", "name": "Health Co"},
        "amount": amount,
        "advance_percentage": advance_percentage,
    }


def cashout_body(invoices: list[dict[str, Any]]) -> dict[str, Any]:
    """The README's request (a Brazilian bank account through D24, paid by the simulator) with
    these invoices."""
    return {
        "currency": "BRL",
        "country": "BR",
        "requested_by": "ana@clinic.example",
        "beneficiary": {
            "name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
            "email": "ana@clinic.example", "bank_code": "001", "bank_branch": "1234",
            "bank_account": "0001234567", "account_type": "C",
        },
        "invoices": invoices,
    }


def advanced(body: dict[str, Any], leave_out: frozenset[str] = frozenset()) -> Decimal:
    """What the request pays: each invoice's amount × advance_percentage / 100, exactly."""
    return sum(
        (Decimal(i["amount"]) * Decimal(i["advance_percentage"]) / 100 for i in body["invoices"] if i["invoice_id"] not in leave_out),
        Decimal(0),
    )


# ---------------------------------------------------------------------------------------------
# Webhooks


@dataclass
class Receiver:
    """A merchant's webhook endpoint: answers 200 to deliveries the `standardwebhooks` library
    verifies with the endpoint's secret (and keeps their payloads), 401 to any other."""

    secret: str | None = None
    verified: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the `webhook-id` of each verified delivery, in order (duplicates would show twice)
    ids: list[str] = field(default_factory=list)
    # while set, an outage: every delivery is answered 503 and its `webhook-id` kept in `missed`
    down: bool = False
    missed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.down:
                    with receiver.lock:
                        receiver.missed.append(headers.get("webhook-id", ""))
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    if receiver.secret is None:
                        raise ValueError("a delivery before the endpoint's secret is known")
                    payload = Webhook(receiver.secret).verify(body, headers)
                except Exception as e:  # the library raises WebhookVerificationError
                    with receiver.lock:
                        receiver.refused.append(f"{headers.get('webhook-id')}: {e}")
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.verified.append(payload)
                    receiver.ids.append(headers.get("webhook-id", ""))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, request_id: str, event: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                p for p in self.verified
                if p.get("cashout_request_id") == request_id and (event is None or p.get("event") == event)
            ]

    def status_update(self, request_id: str, status: str) -> dict[str, Any]:
        """Waits for the verified `cashout_request.status_update` to `status` of that request."""
        def found() -> dict[str, Any] | None:
            return next((p for p in self.events(request_id, "cashout_request.status_update") if p.get("status") == status), None)

        return wait_for(f"a verified status_update {status} of {request_id} (refused: {self.refused}, got: {self.events(request_id)})", found)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# cashout-local


class Cashout:
    """A cashout-local of one test: its own data directory, ports the system picks, the
    merchant key, the admin operator `local` and the reviewers of OPERATORS."""

    def __init__(self, binary: str, logs: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="browser-test-"))
        self.log_path = logs
        env = dict(os.environ)
        env.update(
            CASHOUT_DATA_DIR=str(self.dir / "data"),
            CASHOUT_LISTEN="127.0.0.1:0",
            CASHOUT_SIM_LISTEN="127.0.0.1:0",
        )
        args = [binary, "--merchant-key", MERCHANT_KEY, "--operator-key", ADMIN_KEY]
        for name, (role, key) in OPERATORS.items():
            args += ["--operator", f"{name}:{role}:{key}"]
        self.receivers: list[Receiver] = []
        self.log = open(logs, "w", encoding="utf-8")
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.address: str | None = None
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in iter(self.proc.stdout.readline, ""):
                self.log.write(line)
                self.log.flush()
                m = READY.search(line)
                if m and self.address is None:
                    self.address = m.group(1)
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(START_TIMEOUT) or self.address is None:
            self.stop()
            raise AssertionError(f"`{' '.join(args)}` printed no ready line within {START_TIMEOUT:.0f} s:\n{logs.read_text()[-3000:]}")
        self.base = f"http://{self.address}"

    def stop(self) -> None:
        for receiver in self.receivers:
            receiver.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)  # its last lines, before the log closes
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # the API

    def call(self, method: str, path: str, key: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return call(self.base, method, path, key, body, headers)

    def expect(self, status: int, method: str, path: str, key: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        got, answer = self.call(method, path, key, body, headers)
        if got != status:
            raise ApiError(f"{method} {path}: expected {status}, got {got}: {answer}")
        return answer

    def approval_policy(self, approvers: int, limit: str = "1000") -> None:
        """The default policy: requests over `limit` need `approvers` distinct operators."""
        rules = [{"kind": "amount_limit", "other_currencies": limit, "approvers": approvers}]
        got, answer = self.call("PUT", "/v1/approval-policies/default", ADMIN_KEY, {"rules": rules})
        if got not in (200, 201, 204):
            raise ApiError(f"PUT /v1/approval-policies/default: {got} {answer}")

    def webhook_receiver(self) -> Receiver:
        """A receiver registered as the merchant's webhook endpoint (closed with the runner)."""
        receiver = Receiver()
        self.receivers.append(receiver)
        endpoint = self.expect(201, "POST", "/v1/webhook-endpoints", MERCHANT_KEY, {"url": receiver.url})
        receiver.secret = endpoint["secret"]
        return receiver

    def create(self, body: dict[str, Any], expect_status: str | None = UNDER_REVIEW) -> dict[str, Any]:
        key = "browser-" + "-".join(i["invoice_id"] for i in body["invoices"])
        view = self.expect(201, "POST", "/v1/cashout-requests", MERCHANT_KEY, body, {"Idempotency-Key": key})
        if expect_status is not None:
            assert view["status"] == expect_status, f"a new request over the policy's limit is {view['status']}, not {expect_status}: {view}"
        return view

    def request(self, request_id: str) -> dict[str, Any]:
        return self.expect(200, "GET", f"/v1/cashout-requests/{request_id}", MERCHANT_KEY)

    def status(self, request_id: str) -> str:
        return self.request(request_id)["status"]

    def left_review(self, request_id: str) -> str:
        """Waits until the request is past UNDER_REVIEW; its status then."""
        return wait_for(f"{request_id} to leave {UNDER_REVIEW}", lambda: (s := self.status(request_id)) != UNDER_REVIEW and s)
