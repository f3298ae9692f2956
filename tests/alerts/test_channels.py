"""Channels: Block Kit and webhook bodies, signatures, and the SSRF-safe sender against real sockets."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from alerts import channels, messages
from alerts.channels import UnsafeDestination
from tests.alerts.receiver import Answer, Receiver, block_kit_problems


def message(events: int = 1) -> dict:
    items = [{
        "id": i + 1, "title": f"Runaway call: {10_000 + i:,} reasoning tokens, 3.0× the p95 of summarize / tier 2",
        "severity": "critical", "state": "firing", "value": 10_000.0 + i, "threshold": 6_000.0, "count": 1,
        "new_occurrences": 1, "first_seen": "2025-06-01T00:00:00+00:00", "last_seen": "2025-06-01T00:00:00+00:00",
        "evidence": {"trace_url": f"https://tm.example/traces/{i:032x}/", "metric": "reasoning_tokens",
                     "value": 10_000.0 + i, "threshold": 6_000.0, "p95": 3_000.0, "samples": 120,
                     "task_class": "summarize / tier 2", "model": "o3", "user_id": "u-1"},
    } for i in range(events)]
    return messages.build_message(reason="firing", project="acme", rule={"id": 3, "name": "runaway", "kind": "runaway"},
                                  events=items, base_url="https://tm.example", created_at="2025-06-01T00:00:00+00:00")


def test_slack_payload_is_valid_block_kit_with_a_link_to_the_trace() -> None:
    payload = channels.slack_payload(message())
    assert block_kit_problems(payload) == []
    assert "https://tm.example/traces/" in payload["text"]
    buttons = [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["url"] == "https://tm.example/traces/00000000000000000000000000000000/"
    section = next(b for b in payload["blocks"] if b["type"] == "section")["text"]["text"]
    assert "p95" in section and "120" in section and "6,000" in section


def test_a_burst_is_one_slack_message_with_a_count() -> None:
    burst = message(events=14)
    payload = channels.slack_payload(burst)
    assert block_kit_problems(payload) == []
    assert payload["blocks"][0]["text"]["text"].startswith("14 alerts")
    section = payload["blocks"][1]["text"]["text"]
    assert section.count("• <https://tm.example/traces/") == messages.MAX_LISTED
    assert "… and 4 more" in section


def test_webhook_signature_verifies_and_rejects_tampering_and_old_timestamps() -> None:
    secret = "whsec_test"
    body, headers = channels.render("webhook", message(), "tm-1-2", secret, now=1_700_000_000)
    assert headers[channels.IDEMPOTENCY_HEADER] == "tm-1-2"
    ts, sig = headers[channels.TIMESTAMP_HEADER], headers[channels.SIGNATURE_HEADER]
    assert sig.startswith("sha256=")
    assert channels.verify_signature(secret, body, ts, sig, now=1_700_000_010)
    assert not channels.verify_signature(secret, body + b" ", ts, sig, now=1_700_000_010)
    assert not channels.verify_signature("whsec_other", body, ts, sig, now=1_700_000_010)
    assert not channels.verify_signature(secret, body, ts, sig, now=1_700_000_000 + 3600)
    document = json.loads(body)
    assert document["type"] == "alert.firing" and document["id"] == "tm-1-2" and document["project"] == "acme"


@pytest.mark.parametrize("url", [
    "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/", "http://localhost:9/hook",
    "http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://192.168.0.10/hook", "http://100.64.0.1/hook",
    "http://[::ffff:10.0.0.1]/hook", "ftp://example.com/hook", "http:///nohost",
])
def test_private_loopback_and_link_local_destinations_are_refused(url: str) -> None:
    result = channels.post(url, b"{}", {}, allow_hosts=[], timeout=2)
    assert not result.ok and not result.retryable and result.status_code is None
    assert result.error
    with pytest.raises(UnsafeDestination):
        channels.resolve(url, [])


def test_check_at_save_time_needs_no_dns() -> None:
    for url in ("http://10.0.0.5/x", "http://169.254.169.254/", "http://localhost/x", "http://db.internal/x"):
        with pytest.raises(UnsafeDestination):
            channels.check_url_shape(url, [])
    channels.check_url_shape("https://hooks.slack.com/services/T/B/X", [])
    channels.check_url_shape("http://10.0.0.5/x", ["10.0.0.0/8"])
    channels.check_url_shape("http://localhost/x", ["localhost"])


def test_allowed_host_is_reached_and_signature_checks_out(receiver: Receiver) -> None:
    secret = "whsec_abc"
    body, headers = channels.render("webhook", message(), "tm-9-9", secret)
    refused = channels.post(receiver.url + "/hook", body, headers, allow_hosts=[])
    assert not refused.ok and "not public" in refused.error and receiver.requests == []
    result = channels.post(receiver.url + "/hook", body, headers, allow_hosts=["127.0.0.1"])
    assert result.ok and result.status_code == 200
    (got,) = receiver.requests
    assert got.path == "/hook" and got.headers["content-type"] == "application/json"
    assert got.headers["idempotency-key"] == "tm-9-9"
    assert channels.verify_signature(secret, got.body, got.headers["x-thinkmeter-timestamp"],
                                     got.headers["x-thinkmeter-signature"])


def test_redirects_into_private_addresses_are_not_followed(receiver: Receiver) -> None:
    receiver.script = [Answer(307, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    result = channels.post(receiver.url + "/hook", b"{}", {}, allow_hosts=["127.0.0.1"])
    assert not result.ok and "169.254.169.254" in result.error and len(receiver.requests) == 1
    # a 307 to an allowed place is followed, with the body
    receiver.script = [Answer(307, {"Location": "/elsewhere"}), Answer(200)]
    followed = channels.post(receiver.url + "/hook", b'{"a":1}', {}, allow_hosts=["127.0.0.1"])
    assert followed.ok and receiver.requests[-1].path == "/elsewhere" and receiver.requests[-1].body == b'{"a":1}'
    # other redirects are errors, not silently dropped bodies
    receiver.script = [Answer(302, {"Location": "/x"})]
    moved = channels.post(receiver.url + "/hook", b"{}", {}, allow_hosts=["127.0.0.1"])
    assert not moved.ok and not moved.retryable and moved.status_code == 302


def test_timeouts_and_status_classes(receiver: Receiver) -> None:
    receiver.script = [Answer(200, delay=2.0)]
    started = time.monotonic()
    slow = channels.post(receiver.url, b"{}", {}, allow_hosts=["127.0.0.1"], timeout=0.5)
    assert not slow.ok and slow.retryable and "timed out" in slow.error
    assert time.monotonic() - started < 1.9
    receiver.script = [Answer(429, {"Retry-After": "7"}), Answer(503), Answer(404, body=b"no_service")]
    limited = channels.post(receiver.url, b"{}", {}, allow_hosts=["127.0.0.1"])
    assert limited.retryable and limited.retry_after == 7.0 and limited.status_code == 429
    assert channels.post(receiver.url, b"{}", {}, allow_hosts=["127.0.0.1"]).retryable
    gone = channels.post(receiver.url, b"{}", {}, allow_hosts=["127.0.0.1"])
    assert not gone.retryable and "no_service" in gone.error


def test_retry_after_as_http_date() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    later = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert channels.parse_retry_after(later, now) == pytest.approx(30)
    assert channels.parse_retry_after("99999") == channels.MAX_RETRY_AFTER
    assert channels.parse_retry_after("soon") is None


def test_urls_and_secrets_are_masked() -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx"
    masked = channels.mask_url(url)
    assert masked == "https://hooks.slack.com/••••uvwx"
    assert "T0001" not in masked and "abcdefghijklmnop" not in masked
    assert channels.mask_secret("whsec_0123456789abcdef") == "whsec_0123••••"
