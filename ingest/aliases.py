"""The attribute names we accept for each concept, in order of preference (DESIGN.md §4).

Lookups try the span's attributes first, then its resource's. Keep this table in sync
with DESIGN.md; it is what makes every instrumentor's spans look alike.
"""

from __future__ import annotations

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider")
MODEL = (
    "gen_ai.response.model", "gen_ai.request.model", "llm.response.model_name", "llm.model_name",
    "ai.response.model", "ai.model.id",
)
REQUEST_MODEL = ("gen_ai.request.model", "llm.model_name", "ai.model.id")
OPERATION = ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind", "ai.operationId")
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
    "ai.usage.inputTokens", "ai.usage.promptTokens",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
    "ai.usage.outputTokens", "ai.usage.completionTokens",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning", "ai.usage.reasoningTokens",
    "ai.usage.outputTokenDetails.reasoningTokens",
    "gen_ai.usage.details.reasoning_tokens",  # Pydantic AI (Logfire)
)
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read", "ai.usage.cachedInputTokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "gen_ai.usage.details.cache_read_tokens",  # Pydantic AI (Logfire), before cache_read.input_tokens existed
)
CACHE_WRITE = (
    "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
    "gen_ai.usage.details.cache_write_tokens",  # Pydantic AI (Logfire)
)
# Only used to tell whether a provider's output count already includes reasoning (Gemini).
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total", "ai.usage.totalTokens")
# (attribute, multiplier to milliseconds)
TTFT = (
    ("gen_ai.response.time_to_first_chunk", 1000.0),
    ("gen_ai.server.time_to_first_token", 1000.0),
    ("ai.response.msToFirstChunk", 1.0),
)
# Span events whose time marks the first streamed token (TTFT = event time − span start):
# OpenInference has no TTFT attribute, only this event on streamed spans.
TTFT_EVENTS = ("First Token Stream Event",)
# OpenLIT sets gen_ai.server.time_to_first_token on non-streamed calls too, where it is the
# whole call's latency: trusted only unless this attribute says the call was not streamed.
STREAM_FLAG = "gen_ai.request.stream"
REASONING_EFFORT = ("gen_ai.request.reasoning.level", "gen_ai.request.reasoning_effort", "llm.request.reasoning_effort")
THINKING_BUDGET = ("thinkmeter.thinking_budget", "anthropic.thinking.budget_tokens", "gen_ai.request.thinking.budget_tokens")
INVOCATION_PARAMETERS = "llm.invocation_parameters"
USER = (
    "user.id", "gen_ai.request.user", "gen_ai.user", "traceloop.association.properties.user_id",
    "ai.telemetry.metadata.userId", "ai.telemetry.metadata.user_id",
)
SESSION = ("session.id", "gen_ai.conversation.id", "traceloop.association.properties.session_id",
           "ai.telemetry.metadata.sessionId", "ai.telemetry.metadata.session_id")
TASK_TYPE = ("thinkmeter.task_type", "traceloop.association.properties.task_type", "ai.telemetry.metadata.task_type")
TIER = ("thinkmeter.tier", "traceloop.association.properties.tier", "ai.telemetry.metadata.tier")
METADATA_JSON = "metadata"
REQUEST_ID = ("thinkmeter.request_id", "traceloop.association.properties.request_id", "ai.telemetry.metadata.request_id")
QUALITY = ("thinkmeter.quality",)
REPORTED_COST = ("gen_ai.usage.cost", "llm.cost.total", "operation.cost")
RESPONSE_ID = ("gen_ai.response.id", "llm.response.id", "ai.response.id")
OUTPUT_VALUE = "output.value"
SERVICE = ("service.name",)
ENVIRONMENT = ("deployment.environment.name", "deployment.environment", "environment")

# Attributes that carry prompt or completion text: dropped from the stored attribute maps
# unless the project stores prompts (then redacted). Matched by prefix.
TEXT_PREFIXES = (
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.content.", "llm.input_messages", "llm.output_messages",
    "llm.prompts", "input.value", "output.value", "ai.prompt", "ai.response.text", "ai.response.reasoning",
    "ai.response.object", "ai.response.toolCalls", "gen_ai.choice", "traceloop.entity.input",
    "traceloop.entity.output", "logfire.msg", "all_messages_events", "events",
)
