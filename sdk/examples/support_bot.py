"""A small support assistant instrumented with thinkmeter-sdk.

Each ticket is one request (one trace): a cheap model triages it (task type ``triage``,
tier 1), then either a reasoning model reviews the code in it (``code_review``, tier 3,
OpenAI Responses API with high effort) or Claude answers it with extended thinking
(``support_answer``, tier 2) using the thinking budget Thinkmeter recommends. A verifier
scores every answer afterwards, which is what the recommendations learn from.

Run it against ``make run`` (which prints the demo project's key once; or
``python manage.py create_project demo`` prints a new one)::

    export THINKMETER_API_KEY=tm_...            # THINKMETER_ENDPOINT defaults to http://127.0.0.1:8000
    export OPENAI_API_KEY=sk-... ANTHROPIC_API_KEY=sk-ant-...
    python sdk/examples/support_bot.py

No provider keys? From the repository root, ``python sdk/examples/support_bot.py --offline``
serves the test suite's fake OpenAI/Anthropic API on 127.0.0.1 and uses that.
Prints one JSON summary line; the dashboards show the traffic under service
``support-bot``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import anthropic
import openai

import thinkmeter_sdk

TICKETS = [
    "My invoice shows the wrong VAT number, how do I change it?",
    "This Python function raises a KeyError on empty input, can you review it? ```def first(d): return d['x']```",
    "Why does the export to CSV time out for reports with more than 10,000 rows?",
    "Please review this SQL: SELECT * FROM orders o JOIN customers c ON o.id = c.id",
]


def triage(ticket: str) -> str:
    """One cheap call that decides the route (its span is tagged triage / tier 1)."""
    with thinkmeter_sdk.context(task_type="triage", tier=1):
        openai.OpenAI().chat.completions.create(
            model="o3-mini", reasoning_effort="low",
            messages=[{"role": "user", "content": f"Is this ticket about code? Answer yes or no.\n\n{ticket}"}])
    # The starting keyword classifier decides here (a real app would read the model's answer).
    return "code_review" if thinkmeter_sdk.classify(ticket).task_type == "code" else "support_answer"


@thinkmeter_sdk.context(task_type="code_review", tier=3)
async def review_code(ticket: str) -> str:
    response = await openai.AsyncOpenAI().responses.create(
        model="o3-mini", reasoning={"effort": "high"}, max_output_tokens=4000,
        input=f"Review the code in this ticket and point out bugs:\n\n{ticket}")
    return response.output_text


@thinkmeter_sdk.context(task_type="support_answer", tier=2)
def answer(ticket: str) -> str:
    budget = thinkmeter_sdk.budget_for(default=2048)  # task type and tier from the context above
    text = []
    with anthropic.Anthropic().messages.create(
            model="claude-sonnet-4-5", max_tokens=budget + 2048, stream=True,
            thinking={"type": "enabled", "budget_tokens": budget},
            messages=[{"role": "user", "content": ticket}]) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text.append(event.delta.text)
    return "".join(text)


def verify(reply: str) -> float:
    """A toy verifier: a substantial answer scores higher."""
    return min(1.0, len(reply) / 200)


def handle(ticket: str, user_id: str) -> dict[str, Any]:
    """One ticket = one trace; the verifier's score is attached to it."""
    with thinkmeter_sdk.context(user_id=user_id, session_id=f"ticket-{abs(hash(ticket)) % 10_000}",
                                span_name="handle_ticket") as request:
        route = triage(ticket)
        reply = asyncio.run(review_code(ticket)) if route == "code_review" else answer(ticket)
        trace_id = request.trace_id
    quality = verify(reply)
    thinkmeter_sdk.score(trace_id=trace_id, name="quality", value=quality, comment="length verifier")
    return {"route": route, "trace_id": trace_id, "quality": quality}


def offline_provider() -> Any:
    """Serve the repository's fake provider and point the clients at it."""
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    from tests.ingest.clients.fake_provider import FakeProvider

    fake = FakeProvider(anthropic_report_thinking_tokens=True)
    url = fake.start()
    os.environ.update(OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="sk-offline", ANTHROPIC_BASE_URL=url,
                      ANTHROPIC_API_KEY="sk-ant-offline")
    return fake


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offline", action="store_true", help="use the repository's fake LLM provider")
    parser.add_argument("--users", type=int, default=2, help="simulated users (each sends every ticket)")
    args = parser.parse_args()
    fake = offline_provider() if args.offline else None

    # The two lines: endpoint and key from THINKMETER_ENDPOINT / THINKMETER_API_KEY.
    thinkmeter_sdk.configure(service_name=os.environ.get("OTEL_SERVICE_NAME", "support-bot"))
    thinkmeter_sdk.instrument()

    # Tickets are handled concurrently; the executor carries each task's context into its thread.
    with thinkmeter_sdk.ContextThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(handle, ticket, f"user-{u}") for u in range(args.users) for ticket in TICKETS]
        results = [f.result() for f in futures]
    flushed = thinkmeter_sdk.force_flush()
    thinkmeter_sdk.shutdown()
    if fake is not None:
        fake.stop()
    routes = {r: sum(1 for x in results if x["route"] == r) for r in ("code_review", "support_answer")}
    print(json.dumps({"tickets": len(results), "routes": routes, "flushed": flushed,
                      "traces": [r["trace_id"] for r in results]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
