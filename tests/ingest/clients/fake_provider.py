"""A fake OpenAI + Anthropic HTTP API on 127.0.0.1, for driving the real client libraries.

Ingest tests run the real ``openai`` / ``anthropic`` Python clients (with the real
instrumentation libraries wrapped around them) against this server, so that the spans
Thinkmeter receives are exactly what those libraries emit for real traffic.

Every answer carries fixed usage numbers (the constants below) so tests can assert exact
token counts after normalization:

* OpenAI (chat completions and Responses API): 1200 prompt tokens of which 1000 were
  cached, 900 completion tokens of which 640 were reasoning.
* Anthropic messages: raw API shape, ``input_tokens`` 300 *excluding* cache,
  ``cache_read_input_tokens`` 2000, ``cache_creation_input_tokens`` 500,
  ``output_tokens`` 1500. So the normalized input is 2800. A ``thinking`` block (about
  300 words, ``ANTHROPIC_THINKING_TEXT``) comes first when the request asks for
  ``thinking: {"type": "enabled", "budget_tokens": N}``. By default the usage has no
  ``output_tokens_details`` (the older API shape, where thinking tokens must be estimated
  from the text); ``FakeProvider(anthropic_report_thinking_tokens=True)`` adds
  ``usage.output_tokens_details.thinking_tokens = ANTHROPIC_THINKING_TOKENS`` as newer API
  versions do.

Endpoints:

* ``POST /v1/chat/completions``: non-streaming, and streaming SSE (``stream: true``); the
  final usage chunk (``choices: []``) is sent only with ``stream_options.include_usage``,
  like the real API.
* ``POST /v1/responses``: Responses API, non-streaming and streaming (typed SSE events
  ending with ``response.completed``).
* ``POST /v1/messages``: Anthropic, non-streaming and streaming SSE (message_start ...
  message_stop).

Usage::

    base_url, stop = start_fake_provider()
    openai.OpenAI(base_url=openai_base_url(base_url), api_key="sk-test")
    anthropic.Anthropic(base_url=anthropic_base_url(base_url), api_key="sk-ant-test")
    ...
    stop()

or ``with FakeProvider() as fp: fp.base_url ...``; ``fp.requests`` lists what was received.

Run ``python -m tests.ingest.clients.fake_provider [--port N]`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ---------------------------------------------------------------- OpenAI constants
OPENAI_MODEL = "o3-mini-2025-01-31"
OPENAI_PROMPT_TOKENS = 1200
OPENAI_CACHED_TOKENS = 1000
OPENAI_COMPLETION_TOKENS = 900
OPENAI_REASONING_TOKENS = 640
OPENAI_TOTAL_TOKENS = OPENAI_PROMPT_TOKENS + OPENAI_COMPLETION_TOKENS
OPENAI_CHAT_ID_PREFIX = "chatcmpl-fake-"
OPENAI_RESPONSE_ID_PREFIX = "resp_fake_"
OPENAI_SYSTEM_FINGERPRINT = "fp_fake0001"
OPENAI_ANSWER_TEXT = (
    "The capital of France is Paris. It has been the country's capital since the "
    "late 10th century and is home to about two million people."
)

# ---------------------------------------------------------------- Anthropic constants
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
ANTHROPIC_INPUT_TOKENS = 300  # raw API: excludes cache reads and writes
ANTHROPIC_CACHE_READ_TOKENS = 2000
ANTHROPIC_CACHE_WRITE_TOKENS = 500
ANTHROPIC_OUTPUT_TOKENS = 1500
ANTHROPIC_TOTAL_INPUT_TOKENS = (
    ANTHROPIC_INPUT_TOKENS + ANTHROPIC_CACHE_READ_TOKENS + ANTHROPIC_CACHE_WRITE_TOKENS
)  # 2800: what OTel-convention spans report as gen_ai.usage.input_tokens
ANTHROPIC_THINKING_TOKENS = 1100  # only sent with anthropic_report_thinking_tokens=True
ANTHROPIC_ID_PREFIX = "msg_fake_"
ANTHROPIC_SIGNATURE = "EqQBCkYIBxgCKkBfakeSignatureForThinkmeterTestsOnlyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
ANTHROPIC_ANSWER_TEXT = (
    "Thirty-seven is prime: it is odd, its digit sum (10) is not divisible by three, it "
    "does not end in 5, and 37 divided by 7 leaves a remainder of 2. Since the square "
    "root of 37 is below 7, no other divisor needs checking."
)
ANTHROPIC_THINKING_TEXT = " ".join(
    [
        "The user wants to know whether thirty-seven is a prime number, and they asked me",
        "to show the reasoning rather than only the verdict, so I should work through it",
        "carefully and then summarise. A prime number is a natural number greater than one",
        "whose only positive divisors are one and itself. To test a number n for primality",
        "by trial division it is enough to try every prime p with p squared not exceeding n,",
        "because if n had a factorisation a times b with both factors larger than the square",
        "root of n, their product would exceed n. The square root of thirty-seven lies",
        "between six and seven, since six squared is thirty-six and seven squared is",
        "forty-nine. So the candidate prime divisors are two, three and five. First, two:",
        "thirty-seven is odd, its last digit is seven, so it is not divisible by two. Next,",
        "three: the digit sum is three plus seven, which is ten, and ten is not a multiple of",
        "three, so thirty-seven is not divisible by three either. Let me double check by",
        "direct division: three times twelve is thirty-six, leaving a remainder of one. Good.",
        "Then five: numbers divisible by five end in zero or five, and thirty-seven ends in",
        "seven, so five is out. Just to be thorough I will also try seven even though it is",
        "above the square root: seven times five is thirty-five, remainder two, so not",
        "divisible. There are no remaining candidates, which means thirty-seven has no",
        "divisors other than one and itself. It is therefore prime. I could also recall that",
        "the primes below forty are two, three, five, seven, eleven, thirteen, seventeen,",
        "nineteen, twenty-three, twenty-nine, thirty-one and thirty-seven, which confirms the",
        "result independently. Thirty-seven is also the twelfth prime, and it is sometimes",
        "called a permutable prime because seventy-three, its digit reversal, is prime too,",
        "though that detail is not needed here. The user seems to want a concise but complete",
        "explanation, so the answer should state the conclusion first, then give the short",
        "trial-division argument: odd, digit sum not a multiple of three, does not end in",
        "five or zero, and the square root bound means we can stop before seven. I should",
        "avoid padding the answer with unrelated facts, keep the tone friendly, and make sure",
        "every arithmetic step I mention is correct: three times twelve is thirty-six, seven",
        "times five is thirty-five, six squared is thirty-six, seven squared is forty-nine.",
        "All of these check out. I am confident in the conclusion and will now write the",
        "final answer in two or three sentences so that it is easy to read and verify.",
    ]
)

FIRST_CHUNK_DELAY_S = 0.05  # streaming: pause before the first content chunk (so TTFT > 0)


def _usage_openai_chat() -> dict[str, Any]:
    return {
        "prompt_tokens": OPENAI_PROMPT_TOKENS,
        "completion_tokens": OPENAI_COMPLETION_TOKENS,
        "total_tokens": OPENAI_TOTAL_TOKENS,
        "prompt_tokens_details": {"cached_tokens": OPENAI_CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": OPENAI_REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _usage_openai_responses() -> dict[str, Any]:
    return {
        "input_tokens": OPENAI_PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": OPENAI_CACHED_TOKENS},
        "output_tokens": OPENAI_COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": OPENAI_REASONING_TOKENS},
        "total_tokens": OPENAI_TOTAL_TOKENS,
    }


def _chunks(text: str, n: int = 4) -> list[str]:
    """Split text into about n pieces at spaces (each piece keeps its trailing space)."""
    words = text.split(" ")
    size = max(1, -(-len(words) // n))
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class FakeProvider:
    """The fake provider server. ``start()`` returns its base URL (no ``/v1``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        anthropic_report_thinking_tokens: bool = False,
        anthropic_delta_full_usage: bool = True,
        first_chunk_delay_s: float = FIRST_CHUNK_DELAY_S,
    ) -> None:
        """
        anthropic_report_thinking_tokens: add usage.output_tokens_details.thinking_tokens
            (newer Anthropic API) to non-streaming answers and to the final message_delta.
        anthropic_delta_full_usage: the streaming message_delta usage carries the cumulative
            input/cache counts besides output_tokens (as the live API has since 2025); False
            sends only output_tokens (the older documented shape).
        """
        self.host = host
        self.port = port
        self.anthropic_report_thinking_tokens = anthropic_report_thinking_tokens
        self.anthropic_delta_full_usage = anthropic_delta_full_usage
        self.first_chunk_delay_s = first_chunk_delay_s
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._counters = {k: itertools.count(1) for k in ("chat", "responses", "messages")}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> str:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_id(self, kind: str) -> int:
        with self._lock:
            return next(self._counters[kind])

    def record(self, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})

    # ------------------------------------------------------------ anthropic usage
    def anthropic_usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": ANTHROPIC_INPUT_TOKENS,
            "cache_creation_input_tokens": ANTHROPIC_CACHE_WRITE_TOKENS,
            "cache_read_input_tokens": ANTHROPIC_CACHE_READ_TOKENS,
            "cache_creation": {
                "ephemeral_5m_input_tokens": ANTHROPIC_CACHE_WRITE_TOKENS,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": ANTHROPIC_OUTPUT_TOKENS,
            "service_tier": "standard",
        }
        if self.anthropic_report_thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": ANTHROPIC_THINKING_TOKENS}
        return usage


def start_fake_provider(**kwargs: Any) -> tuple[str, Any]:
    """Start a FakeProvider on 127.0.0.1 (free port); returns (base_url, stop_fn)."""
    fp = FakeProvider(**kwargs)
    base = fp.start()
    return base, fp.stop


def openai_base_url(base_url: str) -> str:
    """What to pass as ``openai.OpenAI(base_url=...)``."""
    return base_url.rstrip("/") + "/v1"


def anthropic_base_url(base_url: str) -> str:
    """What to pass as ``anthropic.Anthropic(base_url=...)`` (the client adds /v1/messages)."""
    return base_url.rstrip("/")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProvider
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    # ------------------------------------------------------------ plumbing
    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def _send_json(self, status: int, obj: Any, extra_headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _start_sse(self, extra_headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def _sse(self, data: Any, event: str | None = None) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        msg = (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"
        self.wfile.write(msg.encode())
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("", "/health"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        try:
            body = self._read_json()
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        self.fake.record(path, {k.lower(): v for k, v in self.headers.items()}, body)
        if path.endswith("/chat/completions"):
            if not self._check_openai_auth():
                return
            self._chat(body)
        elif path.endswith("/responses"):
            if not self._check_openai_auth():
                return
            self._responses(body)
        elif path.endswith("/messages"):
            if not self.headers.get("x-api-key") and not self.headers.get("Authorization"):
                self._send_json(
                    401,
                    {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
                    },
                )
                return
            self._messages(body)
        else:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def _check_openai_auth(self) -> bool:
        if (self.headers.get("Authorization") or "").startswith("Bearer "):
            return True
        self._send_json(
            401,
            {
                "error": {
                    "message": "Missing bearer authentication",
                    "type": "invalid_request_error",
                    "code": None,
                }
            },
        )
        return False

    # ------------------------------------------------------------ OpenAI chat
    def _chat(self, req: dict[str, Any]) -> None:
        n = self.fake.next_id("chat")
        cid = f"{OPENAI_CHAT_ID_PREFIX}{n}"
        created = int(time.time())
        headers = {"x-request-id": f"req_fake_chat_{n}", "openai-processing-ms": "321"}
        if not req.get("stream"):
            self._send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": OPENAI_MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": OPENAI_ANSWER_TEXT,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage_openai_chat(),
                    "service_tier": "default",
                    "system_fingerprint": OPENAI_SYSTEM_FINGERPRINT,
                },
                headers,
            )
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self._start_sse(headers)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": OPENAI_MODEL,
                "service_tier": "default",
                "system_fingerprint": OPENAI_SYSTEM_FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        self._sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        time.sleep(self.fake.first_chunk_delay_s)
        for piece in _chunks(OPENAI_ANSWER_TEXT):
            self._sse(chunk({"content": piece}))
        self._sse(chunk({}, "stop"))
        if include_usage:
            self._sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": OPENAI_MODEL,
                    "service_tier": "default",
                    "system_fingerprint": OPENAI_SYSTEM_FINGERPRINT,
                    "choices": [],
                    "usage": _usage_openai_chat(),
                }
            )
        self._sse("[DONE]")

    # ------------------------------------------------------------ OpenAI Responses API
    def _responses(self, req: dict[str, Any]) -> None:
        n = self.fake.next_id("responses")
        rid = f"{OPENAI_RESPONSE_ID_PREFIX}{n}"
        created = int(time.time())
        reasoning_req = req.get("reasoning") or {}
        msg_id = f"msg_fake_out_{n}"
        reasoning_item = {"id": f"rs_fake_{n}", "type": "reasoning", "summary": []}
        message_item = {
            "id": msg_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": OPENAI_ANSWER_TEXT, "annotations": [], "logprobs": []}
            ],
        }

        def response_obj(status: str, done: bool) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": None,
                "instructions": req.get("instructions"),
                "max_output_tokens": req.get("max_output_tokens"),
                "model": OPENAI_MODEL,
                "output": [reasoning_item, message_item] if done else [],
                "parallel_tool_calls": True,
                "previous_response_id": req.get("previous_response_id"),
                "reasoning": {"effort": reasoning_req.get("effort", "medium"), "summary": None},
                "service_tier": "default",
                "store": True,
                "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": "auto",
                "tools": [],
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": _usage_openai_responses() if done else None,
                "user": req.get("user"),
                "metadata": req.get("metadata") or {},
            }

        headers = {"x-request-id": f"req_fake_resp_{n}"}
        if not req.get("stream"):
            self._send_json(200, response_obj("completed", True), headers)
            return
        self._start_sse(headers)
        seq = itertools.count(0)

        def ev(etype: str, **fields: Any) -> None:
            self._sse({"type": etype, "sequence_number": next(seq), **fields}, event=etype)

        ev("response.created", response=response_obj("in_progress", False))
        ev("response.in_progress", response=response_obj("in_progress", False))
        ev("response.output_item.added", output_index=0, item=reasoning_item)
        ev("response.output_item.done", output_index=0, item=reasoning_item)
        ev(
            "response.output_item.added",
            output_index=1,
            item={
                "id": msg_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        )
        ev(
            "response.content_part.added",
            item_id=msg_id,
            output_index=1,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        )
        time.sleep(self.fake.first_chunk_delay_s)
        for piece in _chunks(OPENAI_ANSWER_TEXT):
            ev(
                "response.output_text.delta",
                item_id=msg_id,
                output_index=1,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        ev(
            "response.output_text.done",
            item_id=msg_id,
            output_index=1,
            content_index=0,
            text=OPENAI_ANSWER_TEXT,
            logprobs=[],
        )
        ev(
            "response.content_part.done",
            item_id=msg_id,
            output_index=1,
            content_index=0,
            part=message_item["content"][0],
        )
        ev("response.output_item.done", output_index=1, item=message_item)
        ev("response.completed", response=response_obj("completed", True))

    # ------------------------------------------------------------ Anthropic messages
    def _messages(self, req: dict[str, Any]) -> None:
        n = self.fake.next_id("messages")
        mid = f"{ANTHROPIC_ID_PREFIX}{n}"
        thinking = req.get("thinking") or {}
        with_thinking = thinking.get("type") in ("enabled", "adaptive")
        headers = {"request-id": f"req_fake_msg_{n}", "anthropic-organization-id": "org-fake"}
        content: list[dict[str, Any]] = []
        if with_thinking:
            content.append(
                {"type": "thinking", "thinking": ANTHROPIC_THINKING_TEXT, "signature": ANTHROPIC_SIGNATURE}
            )
        content.append({"type": "text", "text": ANTHROPIC_ANSWER_TEXT, "citations": None})
        usage = self.fake.anthropic_usage()
        if not req.get("stream"):
            self._send_json(
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": ANTHROPIC_MODEL,
                    "content": content,
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers,
            )
            return
        self._start_sse(headers)

        def ev(etype: str, **fields: Any) -> None:
            self._sse({"type": etype, **fields}, event=etype)

        start_usage = {k: v for k, v in usage.items() if k != "output_tokens_details"}
        start_usage["output_tokens"] = 1
        ev(
            "message_start",
            message={
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": ANTHROPIC_MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        )
        time.sleep(self.fake.first_chunk_delay_s)
        index = 0
        if with_thinking:
            ev(
                "content_block_start",
                index=index,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            )
            for piece in _chunks(ANTHROPIC_THINKING_TEXT, 8):
                ev("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece})
            ev(
                "content_block_delta",
                index=index,
                delta={"type": "signature_delta", "signature": ANTHROPIC_SIGNATURE},
            )
            ev("content_block_stop", index=index)
            index += 1
        ev("content_block_start", index=index, content_block={"type": "text", "text": ""})
        for piece in _chunks(ANTHROPIC_ANSWER_TEXT):
            ev("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        ev("content_block_stop", index=index)
        delta_usage: dict[str, Any] = {"output_tokens": ANTHROPIC_OUTPUT_TOKENS}
        if self.fake.anthropic_delta_full_usage:
            delta_usage = {
                "input_tokens": ANTHROPIC_INPUT_TOKENS,
                "cache_creation_input_tokens": ANTHROPIC_CACHE_WRITE_TOKENS,
                "cache_read_input_tokens": ANTHROPIC_CACHE_READ_TOKENS,
                "output_tokens": ANTHROPIC_OUTPUT_TOKENS,
            }
        if self.fake.anthropic_report_thinking_tokens:
            delta_usage["output_tokens_details"] = {"thinking_tokens": ANTHROPIC_THINKING_TOKENS}
        ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage=delta_usage)
        ev("message_stop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--anthropic-report-thinking-tokens", action="store_true")
    args = ap.parse_args()
    fp = FakeProvider(
        args.host, args.port, anthropic_report_thinking_tokens=args.anthropic_report_thinking_tokens
    )
    print(fp.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fp.stop()


if __name__ == "__main__":
    main()
