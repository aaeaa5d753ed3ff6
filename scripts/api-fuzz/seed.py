"""Seeds a fresh cashout-local for scripts/api-fuzz and writes the schemathesis configuration
that points the generated requests at what it created, so that every operation is exercised on
real resources as well as on made-up ids (which are 404, rightly).

    python3 seed.py BASE_URL MERCHANT_KEY BASE_CONFIG OUT_CONFIG

Creates two webhook endpoints and four cashout requests through the API as a merchant would
(two auto-approved, which the simulator pays; two over the auto-approval limit, which wait for
review), then writes BASE_CONFIG plus their ids as dictionaries: request ids for `{id}` under
`/v1/cashout-requests`, endpoint ids under `/v1/webhook-endpoints`, invoice ids, event ids.
"""
import json
import sys
import urllib.request

base, key, base_config, out = sys.argv[1:5]


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def cashout(n, amount):
    return {
        "currency": "BRL", "country": "BR", "requested_by": "fuzz@merchant.example",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                        "bank_code": "001", "bank_branch": "1234", "bank_account": "0001234567", "account_type": "C"},
        "invoices": [
            {"invoice_id": f"FUZZ-{n}-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"},
             "amount": amount, "advance_percentage": "100"},
            {"invoice_id": f"FUZZ-{n}-2", "payer": {"tax_id": "99888777000166", "name": "Clinic Two"},
             "amount": "100.00", "advance_percentage": "50"},
        ],
    }


endpoints = [call("POST", "/v1/webhook-endpoints", {"url": f"http://127.0.0.1:9/fuzz-{n}"})["id"] for n in range(2)]
requests, invoices, events = [], [], []
for n, amount in enumerate(["100.00", "200.00", "90000.00", "95000.00"]):
    created = call("POST", "/v1/cashout-requests", cashout(n, amount), {"Idempotency-Key": f"fuzz-seed-{n}"})
    requests.append(created["id"])
    invoices += [i["invoice_id"] for i in created["invoices"]]
    events.append(call("GET", f"/v1/cashout-requests/{created['id']}/events")["data"][0]["id"])


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


with open(base_config) as f:
    config = f.read()
config += f"""
# Written by seed.py for this run: what the seeding created.
[dictionaries.requests]
values = {toml_list(requests)}

[dictionaries.endpoints]
values = {toml_list(endpoints)}

[dictionaries.invoices]
values = {toml_list(invoices)}

[dictionaries.events]
values = {toml_list(events)}

[[operations]]
include-path-regex = "^/v1/cashout-requests/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "requests", probability = 0.8 }}, "path.invoice_id" = {{ dictionary = "invoices", probability = 0.8 }} }}

[[operations]]
include-path-regex = "^/v1/webhook-endpoints/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "endpoints", probability = 0.8 }} }}

[[operations]]
include-path-regex = "^/v1/events/"
parameters = {{ "path.event_id" = {{ dictionary = "events", probability = 0.8 }} }}
"""
with open(out, "w") as f:
    f.write(config)
print(f"seeded {len(requests)} requests, {len(endpoints)} endpoints", file=sys.stderr)
