"""The example app, as a user runs it: a process of its own, configured from the environment alone.

This is also the test of configure() making the process's global TracerProvider (the
in-process tests pass a provider of their own): the Anthropic SDK's own spans go through
it too, tagged by our processor, and still count once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ingest.clients.fake_provider import FakeProvider

from sdk_support import Thinkmeter

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support_bot.py"


def test_support_bot_against_a_live_thinkmeter(thinkmeter: Thinkmeter, fake_thinking: FakeProvider) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "THINKMETER_", "OPENAI_", "ANTHROPIC_"))}
    env.update(
        THINKMETER_ENDPOINT=thinkmeter.url, THINKMETER_API_KEY=thinkmeter.key, OTEL_SERVICE_NAME="support-bot-test",
        OPENAI_BASE_URL=fake_thinking.base_url + "/v1", OPENAI_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=fake_thinking.base_url, ANTHROPIC_API_KEY="sk-ant-test", PYTHONWARNINGS="ignore",
    )
    requests_before = len(fake_thinking.requests)
    run = subprocess.run([sys.executable, str(EXAMPLE), "--users", "2"], env=env, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["tickets"] == 8 and summary["flushed"] is True
    assert summary["routes"] == {"code_review": 4, "support_answer": 4}
    assert len(fake_thinking.requests) - requests_before == 16  # a triage call and an answer per ticket

    usage = thinkmeter.usage("service,task_type,tier")
    assert {key: row["requests"] for key, row in usage.items()} == {
        ("support-bot-test", "triage", 1): 8,
        ("support-bot-test", "code_review", 3): 4,
        ("support-bot-test", "support_answer", 2): 4,
    }
    answers = usage[("support-bot-test", "support_answer", 2)]
    assert answers["reasoning_tokens"] == 4 * 1100  # the Anthropic thinking tokens the fake reports
    assert thinkmeter.usage("user_id")[("user-1",)]["requests"] == 8

    scores = thinkmeter.get("scores", trace_id=summary["traces"][0])["results"]
    assert [s["name"] for s in scores] == ["quality"] and 0 < scores[0]["value"] <= 1


EXISTING_PROVIDER_APP = """
import json
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

mine = InMemorySpanExporter()  # the exporter the application already had
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(mine))
trace.set_tracer_provider(provider)

import thinkmeter_sdk
thinkmeter_sdk.configure()
thinkmeter_sdk.instrument()
assert trace.get_tracer_provider() is provider, "configure() replaced the application's provider"
with thinkmeter_sdk.context(task_type="existing_provider", tier=1):
    openai.OpenAI(max_retries=0).chat.completions.create(
        model="o3-mini", messages=[{"role": "user", "content": "hi"}])
assert thinkmeter_sdk.force_flush()
print(json.dumps([dict(span.attributes) for span in mine.get_finished_spans()]))
"""


def test_configure_adds_to_the_applications_global_provider(thinkmeter: Thinkmeter, fake: FakeProvider) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "THINKMETER_", "OPENAI_"))}
    env.update(THINKMETER_ENDPOINT=thinkmeter.url, THINKMETER_API_KEY=thinkmeter.key,
               OPENAI_BASE_URL=fake.base_url + "/v1", OPENAI_API_KEY="sk-test")
    run = subprocess.run([sys.executable, "-c", EXISTING_PROVIDER_APP], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    [span] = json.loads(run.stdout.strip().splitlines()[-1])  # the app's own exporter still gets the span...
    assert span["thinkmeter.task_type"] == "existing_provider" and span["gen_ai.usage.input_tokens"] == 1200
    row = thinkmeter.usage()[("existing_provider", 1)]  # ...and Thinkmeter too
    assert (row["requests"], row["input_tokens"], row["reasoning_tokens"]) == (1, 1200, 640)
