"""Serializers of the analytics API: request parameters of traces and budgets, and the
response shapes of usage, traces and budgets (which also document the OpenAPI schema).

The usage endpoint's parameters are dynamic (a filter per dimension), so
:mod:`dashboards.queries` parses them; its rows are described here for the schema.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from dashboards.queries import TRACE_PAGE_MAX


class Money(serializers.CharField):
    """USD as an exact decimal string."""


# ---------------------------------------------------------------- usage

class UsageRowSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField(required=False, help_text="Start of the time bucket (with ?interval=).")
    other = serializers.BooleanField(required=False, help_text="Present and true on the row that sums every "
                                                               "group past the top N.")
    requests = serializers.IntegerField(help_text="LLM calls (one per provider response).")
    input_tokens = serializers.IntegerField(help_text="Every prompt token, cached ones included.")
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField(help_text="Every generated token billed as output, reasoning included.")
    reasoning_tokens = serializers.IntegerField()
    visible_output_tokens = serializers.IntegerField(help_text="output_tokens − reasoning_tokens.")
    cost_usd = Money()
    cost_input_usd = Money(help_text="Uncached input.")
    cost_cache_usd = Money(help_text="Cache reads and writes.")
    cost_output_usd = Money(help_text="Visible output.")
    cost_reasoning_usd = Money()


class UsageResponseSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive.")
    rows = UsageRowSerializer(many=True, help_text="Each row also has one key per group_by dimension.")


# ---------------------------------------------------------------- traces

def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise serializers.ValidationError("use true or false")


class TraceSearchParamsSerializer(serializers.Serializer):
    """Query parameters of ``GET /api/v1/traces`` besides from/to and the dimension filters."""

    status = serializers.ChoiceField(choices=["ok", "error"], required=False,
                                     help_text="error: a span failed; ok: none did.")
    min_cost = serializers.DecimalField(max_digits=18, decimal_places=9, min_value=0, required=False,
                                        help_text="Minimum trace cost, USD.")
    min_reasoning_tokens = serializers.IntegerField(min_value=0, required=False)
    runaway = serializers.CharField(required=False, help_text="true: only traces with a runaway span; false: none.")
    q = serializers.RegexField(r"^[0-9a-fA-F]{1,32}$", required=False, help_text="Trace id or a prefix of it.")
    limit = serializers.IntegerField(min_value=1, max_value=TRACE_PAGE_MAX, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=100_000, default=0)

    def validate_runaway(self, value: str) -> bool:
        return _flag(value)


class TraceRowSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    project = serializers.CharField()
    start = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    root_span_name = serializers.CharField()
    service = serializers.CharField()
    spans = serializers.IntegerField()
    llm_calls = serializers.IntegerField()
    models = serializers.ListField(child=serializers.CharField())
    task_type = serializers.CharField()
    tier = serializers.IntegerField()
    user_id = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cost_usd = Money()
    status = serializers.CharField()
    runaway = serializers.BooleanField()


class TraceListSerializer(serializers.Serializer):
    traces = TraceRowSerializer(many=True)
    next_offset = serializers.IntegerField(allow_null=True, help_text="offset of the next page, null on the last.")


class SpanSerializer(serializers.Serializer):
    span_id = serializers.CharField()
    parent_span_id = serializers.CharField(allow_null=True)
    project = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    start = serializers.DateTimeField()
    offset_ms = serializers.FloatField(help_text="Milliseconds after the trace's first span started.")
    duration_ms = serializers.FloatField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    service = serializers.CharField()
    environment = serializers.CharField()
    instrumentation = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()
    request_model = serializers.CharField()
    operation = serializers.CharField()
    task_type = serializers.CharField()
    tier = serializers.IntegerField()
    user_id = serializers.CharField()
    session_id = serializers.CharField()
    request_id = serializers.CharField()
    response_id = serializers.CharField()
    thinking_budget = serializers.IntegerField()
    reasoning_effort = serializers.CharField()
    ttft_ms = serializers.FloatField(allow_null=True)
    input_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    visible_output_tokens = serializers.IntegerField()
    reasoning_estimated = serializers.BooleanField()
    has_usage = serializers.BooleanField()
    counted = serializers.BooleanField(help_text="Whether this span's usage counts toward sums.")
    cost_usd = Money()
    cost_input_usd = Money()
    cost_cache_usd = Money()
    cost_output_usd = Money()
    cost_reasoning_usd = Money()
    reported_cost_usd = Money(allow_null=True)
    priced = serializers.BooleanField()
    quality = serializers.FloatField(allow_null=True)
    runaway = serializers.BooleanField()
    attributes = serializers.DictField(child=serializers.CharField())
    resource_attributes = serializers.DictField(child=serializers.CharField())
    prompt_text = serializers.CharField(required=False, help_text="Engineers, admins and keys only.")
    completion_text = serializers.CharField(required=False, help_text="Engineers, admins and keys only.")


class TraceScoreSerializer(serializers.Serializer):
    span_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    value = serializers.FloatField()
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.source
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class TraceDetailSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    start = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    llm_calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cost_usd = Money()
    runaway = serializers.BooleanField()
    spans = SpanSerializer(many=True)
    scores = TraceScoreSerializer(many=True)


# ---------------------------------------------------------------- budgets

class BudgetParamsSerializer(serializers.Serializer):
    """Query parameters of ``GET /api/v1/budgets``."""

    window = serializers.RegexField(r"^\d{1,5}\s*[mhdwMHDW]$", default="7d",
                                    help_text="How far back: 7d, 24h, 2w, 90m (at most 400 days).")
    tolerance = serializers.FloatField(min_value=0, max_value=1, default=0.02,
                                       help_text="Quality a recommended budget may lose against the best (absolute).")
    task_type = serializers.CharField(required=False, allow_blank=True)
    score_name = serializers.CharField(default="quality", max_length=200,
                                       help_text="Score name read from the scores table when a span has no quality.")
    min_samples = serializers.IntegerField(min_value=1, max_value=100_000, default=5,
                                           help_text="Scored calls a budget needs to be considered.")


class BudgetOptionSerializer(serializers.Serializer):
    thinking_budget = serializers.IntegerField()
    requests = serializers.IntegerField()
    quality_samples = serializers.IntegerField()
    mean_quality = serializers.FloatField()


class BudgetClassSerializer(serializers.Serializer):
    task_type = serializers.CharField()
    tier = serializers.IntegerField(allow_null=True, help_text="null: the task type over every tier.")
    requests = serializers.IntegerField()
    reasoning_p50 = serializers.FloatField()
    reasoning_p90 = serializers.FloatField()
    reasoning_p95 = serializers.FloatField()
    reasoning_p99 = serializers.FloatField()
    cost_p95_usd = Money()
    thinking_share = serializers.FloatField(help_text="Share of calls with reasoning tokens (0–1).")
    quality_samples = serializers.IntegerField()
    mean_quality = serializers.FloatField(allow_null=True)
    quality_per_1k_reasoning_tokens = serializers.FloatField(allow_null=True)
    recommended_thinking_budget = serializers.IntegerField(allow_null=True)
    budgets = BudgetOptionSerializer(many=True)


class BudgetResponseSerializer(serializers.Serializer):
    window = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive.")
    tolerance = serializers.FloatField()
    score_name = serializers.CharField()
    classes = BudgetClassSerializer(many=True)
