"""Notification channels: Slack Block Kit and signed generic webhooks, sent over safe HTTP.

- :func:`slack_payload` renders a message (:mod:`alerts.messages`) as a Slack incoming
  webhook body: ``text`` (the fallback shown in notifications) and Block Kit ``blocks``
  with the numbers and a button back to the trace (for a quota, to the traces of the
  subject's day).
- :func:`webhook_payload` is the generic JSON body. :func:`signature_headers` signs it:
  ``X-Thinkmeter-Timestamp`` (Unix seconds) and ``X-Thinkmeter-Signature:
  sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the channel's signing secret>``;
  receivers check it with :func:`verify_signature` (or the same three lines of their own)
  and reject old timestamps. ``Idempotency-Key`` names the notification and channel:
  a receiver that sees one twice may drop the second.
- :func:`post` is the only way out: http(s) only, the host resolved once and the
  connection pinned to an address that is public (private, loopback, link-local,
  reserved and multicast addresses are refused unless the host or address is in
  ``settings.WEBHOOK_ALLOW_HOSTS``), time limits on connect and on the whole exchange,
  no proxies from the environment, and redirects followed only as 307/308 to a
  destination that passes the same check.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from alerts.findings import fmt_metric, fmt_number

SIGNATURE_HEADER = "X-Thinkmeter-Signature"
TIMESTAMP_HEADER = "X-Thinkmeter-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "Thinkmeter-Alerts/1.0"
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
MAX_REDIRECTS = 3
MAX_RETRY_AFTER = 3600.0
SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestination(ValueError):
    """The URL may not be reached: bad scheme, no host, or an address that is not public."""


# ---------------------------------------------------------------- payloads

def _plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _event_lines(event: Mapping[str, Any]) -> list[str]:
    evidence = event.get("evidence") or {}
    metric = str(evidence.get("metric", ""))
    lines = []
    if "value" in evidence and metric:
        lines.append(f"*Value:* {fmt_metric(metric, float(evidence['value']))}")
    threshold = evidence.get("threshold", event.get("threshold"))
    if threshold is not None and metric:
        lines.append(f"*Threshold:* {fmt_metric(metric, float(threshold))}")
    if evidence.get("limit") is not None and metric:
        lines.append(f"*Limit:* {fmt_metric(metric, float(evidence['limit']))}"
                     + (f" per day ({evidence['day']})" if evidence.get("day") else ""))
    if evidence.get("p95") is not None:
        samples = evidence.get("samples")
        lines.append(f"*p95:* {fmt_number(float(evidence['p95']))}"
                     + (f" over {fmt_number(float(samples))} calls" if samples else "")
                     + (f" ({evidence['task_class']})" if evidence.get("task_class") else ""))
    for label, key in (("Model", "model"), ("User", "user_id"), ("Subject", "subject"), ("Month", "month"),
                       ("Hour", "hour")):
        if evidence.get(key):
            lines.append(f"*{label}:* {evidence[key]}")
    if int(event.get("count") or 1) > 1:
        lines.append(f"*Occurrences:* {int(event['count'])}")
    return lines


def slack_payload(message: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: fallback ``text`` plus Block Kit ``blocks``."""
    events: Sequence[Mapping[str, Any]] = message["events"]
    emoji = ":white_check_mark:" if message["reason"] == "resolved" else SEVERITY_EMOJI.get(message["severity"], "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _plain(str(message["title"]), 150), "emoji": True}},
    ]
    if len(events) == 1:
        body = "\n".join(_event_lines(events[0])) or str(events[0]["title"])
    else:
        items = []
        for event in events:
            url = (event.get("evidence") or {}).get("trace_url") or (event.get("evidence") or {}).get("url")
            title = _plain(str(event["title"]), 200)
            items.append(f"• <{url}|{title}>" if url else f"• {title}")
        if message.get("more"):
            items.append(f"… and {message['more']} more")
        body = "\n".join(items)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _plain(f"{emoji} {body}".strip(), 3000)}})
    buttons = []
    evidence = (events[0].get("evidence") or {}) if len(events) == 1 else {}
    if evidence.get("trace_url"):
        buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Open trace"},
                        "url": evidence["trace_url"], "action_id": "open_trace"})
    elif evidence.get("url"):  # a quota's subject: the traces of that day
        buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Open traces"},
                        "url": evidence["url"], "action_id": "open_traces"})
    buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Alert history"},
                    "url": message["history_url"], "action_id": "alert_history"})
    blocks.append({"type": "actions", "elements": buttons})
    rule = message.get("rule") or {}
    context = (f"Thinkmeter · project *{message['project']}* · rule {rule.get('name', '')} ({rule.get('kind', '')})"
               f" · {message['reason']}")
    if message.get("count", 1) > 1:
        context += f" · {message['count']} alerts, {message['occurrences']} occurrences"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _plain(context, 3000)}]})
    return {"text": _plain(str(message["text"]), 3000), "blocks": blocks}


def webhook_payload(message: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The generic webhook body: the message itself, typed and identified."""
    return {"type": f"alert.{message['reason']}", "id": idempotency_key, **message}


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None, *,
                     now: float | None = None, tolerance: float = 300.0) -> bool:
    """What a receiver does: the signature matches and the timestamp is within ``tolerance`` seconds."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# ---------------------------------------------------------------- destination checks

def _allowed(host: str, address: IPAddress | None, allow_hosts: Iterable[str]) -> bool:
    for entry in allow_hosts:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host.lower():
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def is_public(address: IPAddress) -> bool:
    """Public unicast: not private, loopback, link-local, reserved, multicast or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str  # the pinned IP


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeDestination(f"only http and https URLs can be notified, not {scheme or 'no scheme'!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeDestination("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeDestination(f"bad port in URL: {exc}") from exc
    return scheme, host, port


def check_url_shape(url: str, allow_hosts: Iterable[str]) -> None:
    """Cheap check without DNS (at save time): scheme, host, and literal or local addresses."""
    _, host, _ = _split(url)
    allow = list(allow_hosts)
    if _allowed(host, None, allow):
        return
    try:
        address: IPAddress = ipaddress.ip_address(host)
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith((".localhost", ".local", ".internal")):
            raise UnsafeDestination(f"{host} is a local name; add it to THINKMETER_WEBHOOK_ALLOW_HOSTS "
                                    "to allow it") from None
        return
    if not is_public(address) and not _allowed(host, address, allow):
        raise UnsafeDestination(f"{host} is not a public address; add it to THINKMETER_WEBHOOK_ALLOW_HOSTS "
                                "to allow it")


def resolve(url: str, allow_hosts: Iterable[str]) -> Destination:
    """Where to connect for ``url``: its first permitted address. Raises UnsafeDestination."""
    scheme, host, port = _split(url)
    allow = list(allow_hosts)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeDestination(f"cannot resolve {host}: {exc}") from exc
    refused = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if is_public(address) or _allowed(host, address, allow):
            return Destination(scheme, host, port, str(address))
        refused.append(str(address))
    raise UnsafeDestination(
        f"{host} resolves to {', '.join(sorted(set(refused)))}, which is not public (private, loopback, "
        "link-local or reserved); add the host to THINKMETER_WEBHOOK_ALLOW_HOSTS to allow it"
    )


# ---------------------------------------------------------------- sending

@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    retryable: bool
    retry_after: float | None = None
    error: str = ""
    response_excerpt: str = ""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), at most an hour."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _pinned_request(client: httpx.Client, destination: Destination, url: str, body: bytes,
                    headers: Mapping[str, str]) -> httpx.Response:
    parts = urlsplit(url)
    address = destination.address
    netloc = f"[{address}]" if ":" in address else address
    default_port = 443 if destination.scheme == "https" else 80
    if destination.port != default_port:
        netloc += f":{destination.port}"
    target = parts._replace(netloc=netloc).geturl()
    host_header = destination.host if destination.port == default_port else f"{destination.host}:{destination.port}"
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    return client.post(target, content=body, headers={**headers, "Host": host_header}, extensions=extensions)


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow_hosts: Iterable[str],
         timeout: float = TOTAL_TIMEOUT) -> SendResult:
    """POST ``body`` to ``url`` safely (see the module docstring); never raises for network trouble."""
    allow = list(allow_hosts)
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    deadline = time.monotonic() + timeout
    current = url
    with httpx.Client(follow_redirects=False, trust_env=False,
                      timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                destination = resolve(current, allow)
            except UnsafeDestination as exc:
                return SendResult(False, None, False, error=str(exc))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return SendResult(False, None, True, error=f"timed out after {timeout:g} s")
            client.timeout = httpx.Timeout(remaining, connect=min(CONNECT_TIMEOUT, remaining))
            try:
                response = _pinned_request(client, destination, current, body, all_headers)
            except httpx.TimeoutException:
                return SendResult(False, None, True, error=f"timed out after {timeout:g} s")
            except httpx.HTTPError as exc:
                return SendResult(False, None, True, error=f"{type(exc).__name__}: {exc}")
            status = response.status_code
            excerpt = response.text[:300]
            if status in (307, 308) and response.headers.get("location"):
                current = urljoin(current, response.headers["location"])
                continue
            if 300 <= status < 400:
                return SendResult(False, status, False, error=f"redirected with {status}; webhooks must be "
                                  "posted to their final URL", response_excerpt=excerpt)
            if 200 <= status < 300:
                return SendResult(True, status, False, response_excerpt=excerpt)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            retryable = status in (408, 425, 429) or status >= 500
            return SendResult(False, status, retryable, retry_after=retry_after,
                              error=f"HTTP {status}: {excerpt[:200]}", response_excerpt=excerpt)
    return SendResult(False, None, False, error=f"more than {MAX_REDIRECTS} redirects")


def render(kind: str, message: Mapping[str, Any], idempotency_key: str, signing_secret: str = "",
           now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers a channel of ``kind`` sends for ``message``."""
    headers = {IDEMPOTENCY_HEADER: idempotency_key}
    if kind == "slack":
        return encode(slack_payload(message)), headers
    if kind == "webhook":
        body = encode(webhook_payload(message, idempotency_key))
        if signing_secret:
            headers.update(signature_headers(signing_secret, body, now))
        return body, headers
    raise ValueError(f"unknown channel kind {kind!r}")


def mask_url(url: str) -> str:
    """What pages and API answers show of a channel URL (a secret): scheme, host and the last 4 characters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "••••"
    tail = url[-4:] if len(url) > 12 else ""
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/••••{tail}" if host else "••••"


def mask_secret(secret: str) -> str:
    return f"{secret[:10]}••••" if secret else ""
