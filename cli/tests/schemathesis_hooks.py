"""What the schemathesis test knows of the stack under test that the OpenAPI document cannot say.

- The stack runs with HERALD_TARGET_POLICY=loopback, so a webhook URL may only name this
  machine. The document is every deployment's, so its `url` pattern takes any host; here it is
  narrowed to the loopback hosts (HERALD_TEST_URL_PATTERN, built by the test with the pattern
  the document's comes from), so the webhooks generated are ones this stack accepts.
- A webhook names each header once, in any letter case. JSON Schema has no keyword for items
  unique by one of their fields (`uniqueItems` compares whole items), so a generated body that
  repeats a header name is not sent.
- Two refusals follow from the stored webhook, not from the request, so no request schema can
  state them: a PATCH is checked merged into the stored webhook (its labels together at most 16),
  and a PUT or PATCH that moves a webhook to another origin must send its protected header values
  again. A schema-valid request refused for those alone, and named so by the answer's `errors`,
  is not a failure; schemathesis counts what it drops.
- A recovery's `until` must be after its `since`: JSON Schema compares no two fields' values, so
  a schema-valid window that ends before it starts, refused for that alone, is not a failure.
"""

import json
import os
import re

import schemathesis

SENT_AGAIN = re.compile(r"headers\[\d+\]\.value")
MOVED = "must be sent again: the webhook moves to another origin"
OVER_THE_LABELS = {"field": "metadata", "message": "at most 16 entries"}
WINDOW_BACKWARDS = {"field": "until", "message": "must be after `since`"}


@schemathesis.hook
def before_load_schema(context, raw_schema):
    pattern = os.environ["HERALD_TEST_URL_PATTERN"]
    narrowed = 0
    for schema in raw_schema["components"]["schemas"].values():
        url = schema.get("properties", {}).get("url")
        # Answers carry a URL too, without a pattern: only request bodies are narrowed.
        if url is not None and "pattern" in url:
            url["pattern"] = pattern
            narrowed += 1
    # Create, patch and the unsaved test each take a URL: a document without them is not the
    # one this file was written for.
    assert narrowed == 3, f"{narrowed} request schemas with a `url`"


@schemathesis.hook
def filter_body(context, body):
    headers = body.get("headers") if isinstance(body, dict) else None
    if not isinstance(headers, list):
        return True
    names = [
        h["key"].lower()
        for h in headers
        if isinstance(h, dict) and isinstance(h.get("key"), str)
    ]
    return len(names) == len(set(names))


def refused_for_what_is_stored(method, error):
    if SENT_AGAIN.fullmatch(error.get("field", "")):
        return error.get("message", "").startswith(MOVED)
    return method == "PATCH" and error == OVER_THE_LABELS


def refused_for_what_no_schema_says(method, error):
    return refused_for_what_is_stored(method, error) or (
        method == "POST" and error == WINDOW_BACKWARDS
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 422:
        return True
    if case.method not in ("PUT", "PATCH", "POST"):
        return True
    errors = json.loads(response.content).get("errors", [])
    return not errors or not all(refused_for_what_no_schema_says(case.method, e) for e in errors)
