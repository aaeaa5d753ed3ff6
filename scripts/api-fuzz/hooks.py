"""Schemathesis hooks for scripts/api-fuzz.

An `Idempotency-Key` that matches its documented pattern is made unique per call. Generated keys
are short and repeat ("0", "00"); the same key with another body is refused by design (422
`idempotency_key_reused`, a rule about earlier calls that no schema can state), so repeats
would hide what the fuzzer is there to find. Keys that violate the pattern are left as they are:
their refusal is still checked.
"""
import re
import uuid

import schemathesis

KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and KEY.match(headers[name]):
            headers[name] = f"fuzz-{uuid.uuid4()}"
    return None
