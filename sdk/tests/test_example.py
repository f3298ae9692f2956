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
