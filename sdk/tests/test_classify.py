"""classify(): the starting keyword classifier (task type, tier, complexity)."""

from __future__ import annotations

import pytest

import thinkmeter_sdk
from thinkmeter_sdk import classify

from sdk_support import Spans


@pytest.mark.parametrize(("prompt", "task_type"), [
    ("Why does this Python function raise a KeyError? ```def f(d): return d['x']```", "code"),
    ("Prove that the sum of two even numbers is even.", "math"),
    ("Summarize this article in three key points.", "summarization"),
    ("Extract all dates and amounts from this invoice as JSON.", "extraction"),
    ("Draft a polite email declining the meeting.", "writing"),
    ("Compare the pros and cons of Postgres and MySQL for our strategy.", "analysis"),
    ("What is the capital of France?", "qa"),
])
def test_task_types(prompt: str, task_type: str) -> None:
    assert classify(prompt).task_type == task_type


def test_simple_prompts_get_tier_1() -> None:
    result = classify("What is the capital of France? Answer briefly.")
    assert (result.task_type, result.tier) == ("qa", 1)
    assert result.complexity < 0.34


def test_hard_prompts_get_tier_3() -> None:
    prompt = (
        "Design a distributed rate limiter for our API. Think step by step, explain the algorithm and its "
        "complexity, list all edge cases (clock skew, race condition between replicas), and prove that it never "
        "admits more than N requests per window. Constraints:\n1. must work without a central lock\n"
        "2. at least 99.9% availability\n3. no more than 2 ms overhead per request\n"
    )
    result = classify(prompt)
    assert result.tier == 3 and result.complexity >= 0.67
    assert {"step by step", "prove", "edge case", "race condition", "numbered steps"} <= set(result.signals)


def test_middle_tier_and_determinism() -> None:
    prompt = "Explain step by step why this recursive function is slow, and optimize it."
    first, second = classify(prompt), classify(prompt)
    assert first == second
    assert (first.task_type, first.tier) == ("code", 2)


def test_custom_tables() -> None:
    result = classify("Please triage this ticket", task_keywords={"support": ("ticket", "triage")},
                      complexity_keywords={})
    assert (result.task_type, result.tier) == ("support", 1)


def test_classification_tags_spans(spans: Spans) -> None:
    with classify("Prove that 37 is prime, step by step.").context(user_id="u-1"):
        spans.provider.get_tracer("app").start_span("llm").end()
    span = spans.one(None)
    assert span.attributes["thinkmeter.task_type"] == "math"
    assert span.attributes["thinkmeter.tier"] in (2, 3)
    assert span.attributes["user.id"] == "u-1"


def test_not_a_string() -> None:
    with pytest.raises(TypeError, match="prompt text"):
        thinkmeter_sdk.classify(["hello"])  # type: ignore[arg-type]
