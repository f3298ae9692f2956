"""Drive a real LLM client, wrapped by a real instrumentation library, and export its spans over OTLP.

Instrumentors monkeypatch the client libraries for the whole process, so every flavour runs in a
process of its own::

    python -m tests.ingest.clients.run_instrumented <flavour> \\
        --provider-url http://127.0.0.1:PORT   # a tests.ingest.clients.fake_provider server
        --otlp-endpoint URL     # http: full URL of /v1/traces; grpc: host:port or http://host:port
        --api-key KEY           # "Authorization: Bearer KEY" (http) / "authorization" metadata (grpc)
        [--protocol http|grpc] [--stream] [--calls N]
        [--task-type X] [--tier N] [--user-id U] [--session-id S]
        [--no-content] [--no-sdk-spans] [--dump-spans FILE]

Flavours (see CAPTURED.md for what each one emits):

    openllmetry-openai     opentelemetry-instrumentation-openai (traceloop / OpenLLMetry)
    openllmetry-anthropic  opentelemetry-instrumentation-anthropic (traceloop / OpenLLMetry)
    openinference-openai   openinference-instrumentation-openai (Arize)
    openlit                openlit, OpenAI only (openlit.init with our TracerProvider; metrics, events,
                           pricing download and every other instrumentor disabled)
    openlit-anthropic      the same, Anthropic only
    openai-v2              opentelemetry-instrumentation-openai-v2 (OTel contrib; chat completions only,
                           the Responses API is not instrumented, so that call produces no span)
    none-openai            no instrumentor (control: the openai client emits no spans of its own)
    none-anthropic         no instrumentor: only the anthropic SDK's own spans (anthropic>=2 emits an
                           "anthropic.messages.create" span whenever a global TracerProvider exists)

OpenAI flavours make, per --calls round, one chat.completions.create call (model "o3-mini",
reasoning_effort "high"; with --stream: stream=True + stream_options.include_usage) and one
responses.create call (reasoning effort "high"; streamed with --stream). Anthropic flavours make one
messages.create call with thinking {"type": "enabled", "budget_tokens": 2048} (stream=True with
--stream). The anthropic SDK's own spans stay on (as in a real app) unless --no-sdk-spans.

Association properties (--task-type/--tier/--user-id/--session-id), set the way each library supports:

    openllmetry-*   what traceloop-sdk's Traceloop.set_association_properties() does (the sdk itself is
                    not installed): the dict goes into the OTel context under "association_properties"
                    and a span processor copies it onto every span started in that context as
                    traceloop.association.properties.<key> (keys task_type, tier, user_id, session_id).
    openinference-* openinference.instrumentation.using_attributes(user_id=, session_id=,
                    metadata={"task_type":..., "tier":...}) -> user.id, session.id, metadata (JSON).
    openlit*        openlit's context-scoped custom span attributes (openlit.inject_additional_attributes
                    mechanism): thinkmeter.task_type, thinkmeter.tier, user.id, session.id.
    openai-v2, none-*  no library mechanism: a span processor (as an app would add) stamps
                    thinkmeter.task_type, thinkmeter.tier, user.id, session.id on every span.
The user id is also sent in the request itself (OpenAI `user`, Anthropic `metadata.user_id`).

Content capture is on by default for every library: TRACELOOP_TRACE_CONTENT=true; openai-v2 gets
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY while openlit gets =true (openlit reads that
variable as a boolean) and capture_message_content=True; OpenInference captures by default.
--no-content turns capture off everywhere. The anthropic SDK's own spans keep their default content
mode (metadata_only) unless ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content is in the environment.

Needs, besides the project's dev extras (pins that work with openai 3.57 / anthropic 2.14 / otel 1.45.2):
    pip install opentelemetry-instrumentation-openai==0.62.4 opentelemetry-instrumentation-anthropic==0.62.4 \
        openinference-instrumentation-openai==0.1.66 opentelemetry-instrumentation-openai-v2==2.4b0 \
        opentelemetry-util-genai==1.1b0
    pip install --no-deps openlit==1.45.0 schedule xmltodict   # openlit pins anthropic<1, openai<3
(util-genai 1.2b0+ dropped the module openai-v2 2.4b0 imports.) A flavour whose library is missing
fails with ModuleNotFoundError on stderr and a non-zero exit.

Prints exactly one JSON line on stdout, e.g.
    {"flavour": "openlit", "service_name": "instrumented-openlit", "protocol": "http", "stream": false,
     "calls": 2 (provider requests made), "response_ids": ["chatcmpl-fake-1", "resp_fake_1"],
     "requests": [{"api": "chat.completions", "stream": false, "response_id": "chatcmpl-fake-1"}, ...],
     "spans_finished": 2, "spans_exported": 2, "export_results": ["SUCCESS"], ...}
From a test, ``run_in_subprocess(flavour, provider_url, otlp_endpoint, api_key, *cli_args)`` runs it
with the current interpreter and returns that summary as a dict.
(export_results lists each OTLP export's result: SUCCESS or FAILURE, e.g. after a 401; the exit
code is 0 either way, so tests can drive rejected keys too.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

OPENAI_FLAVOURS = ("openllmetry-openai", "openinference-openai", "openlit", "openai-v2", "none-openai")
ANTHROPIC_FLAVOURS = ("openllmetry-anthropic", "openlit-anthropic", "none-anthropic")
FLAVOURS = OPENAI_FLAVOURS + ANTHROPIC_FLAVOURS

OPENAI_REQUEST_MODEL = "o3-mini"
ANTHROPIC_REQUEST_MODEL = "claude-sonnet-4-5"
THINKING_BUDGET = 2048
PROMPT = "Is 37 a prime number? Explain briefly."
SYSTEM = "You are a concise math tutor."

# openlit pricing (USD per 1K tokens), passed as a local file so openlit does not download its catalog.
OPENLIT_PRICING = {
    "chat": {
        name: {"promptPrice": 0.0011, "completionPrice": 0.0044, "cacheReadPrice": 0.00055}
        for name in ("o3-mini", "o3-mini-2025-01-31")
    }
    | {
        name: {
            "promptPrice": 0.003,
            "completionPrice": 0.015,
            "cacheReadPrice": 0.0003,
            "cacheCreationPrice": 0.00375,
        }
        for name in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="run_instrumented", description="Emit real instrumentor spans over OTLP."
    )
    ap.add_argument("flavour", choices=FLAVOURS)
    ap.add_argument("--provider-url", required=True, help="fake provider base URL, without /v1")
    ap.add_argument("--otlp-endpoint", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--protocol", choices=("http", "grpc"), default="http")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--calls", type=int, default=1, help="rounds of calls (default 1)")
    ap.add_argument("--task-type")
    ap.add_argument("--tier")
    ap.add_argument("--user-id")
    ap.add_argument("--session-id")
    ap.add_argument("--no-content", action="store_true", help="turn off prompt/completion capture")
    ap.add_argument("--no-sdk-spans", action="store_true", help="turn off the anthropic SDK's own spans")
    ap.add_argument("--dump-spans", help="also write every finished span as JSON to this file")
    return ap.parse_args(argv)


def set_env(args: argparse.Namespace) -> None:
    """Environment the libraries read at import / instrument time."""
    content = not args.no_content
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true" if content else "false"
    # One variable, two readings: opentelemetry-util-genai (openai-v2) wants a ContentCapturingMode
    # name (anything else means NO_CONTENT); openlit parses it as a boolean ("SPAN_ONLY" -> off).
    if args.flavour.startswith("openlit"):
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true" if content else "false"
    else:
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = (
            "SPAN_ONLY" if content else "NO_CONTENT"
        )
    if not content:
        os.environ["OPENINFERENCE_HIDE_INPUTS"] = "true"
        os.environ["OPENINFERENCE_HIDE_OUTPUTS"] = "true"
    if args.no_sdk_spans:
        os.environ["ANTHROPIC_OPEN_TELEMETRY"] = "false"
    # The exporter is configured explicitly; keep stray OTEL_* settings of the caller out of the way.
    for var in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        os.environ.pop(var, None)
    os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")


def make_exporter(args: argparse.Namespace) -> Any:
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        endpoint = args.otlp_endpoint
        insecure = not endpoint.startswith("https://")
        return GrpcExporter(
            endpoint=endpoint, insecure=insecure, headers={"authorization": f"Bearer {args.api_key}"}
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=args.otlp_endpoint, headers={"Authorization": f"Bearer {args.api_key}"})


def recording(exporter: Any) -> Any:
    """Wrap a SpanExporter to remember each export's result (summary: export_results)."""
    from opentelemetry.sdk.trace.export import SpanExporter

    class Recording(SpanExporter):
        def __init__(self) -> None:
            self.results: list[str] = []
            self.spans_ok = 0

        def export(self, spans: Any) -> Any:
            result = exporter.export(spans)
            self.results.append(result.name)
            if result.name == "SUCCESS":
                self.spans_ok += len(spans)
            return result

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    return Recording()


def association(args: argparse.Namespace) -> dict[str, str]:
    props = {
        "task_type": args.task_type,
        "tier": args.tier,
        "user_id": args.user_id,
        "session_id": args.session_id,
    }
    return {k: str(v) for k, v in props.items() if v is not None}


def make_stamp_processor(attrs_from_context: Any) -> Any:
    """A SpanProcessor that sets attributes, computed from the parent context, on every started span."""
    from opentelemetry.sdk.trace import SpanProcessor

    class StampProcessor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            for key, value in attrs_from_context(parent_context).items():
                span.set_attribute(key, value)

        def on_end(self, span: Any) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return StampProcessor()


def span_to_dict(span: Any) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "scope_version": span.instrumentation_scope.version if span.instrumentation_scope else None,
        "status": span.status.status_code.name,
        "duration_ms": round((span.end_time - span.start_time) / 1e6, 3),
        "attributes": dict(span.attributes or {}),
        "events": [
            {
                "name": e.name,
                "offset_ms": round((e.timestamp - span.start_time) / 1e6, 3),
                "attributes": dict(e.attributes or {}),
            }
            for e in span.events
        ],
        "resource": dict(span.resource.attributes),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_env(args)

    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    service_name = f"instrumented-{args.flavour}"
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    props = association(args)
    flavour = args.flavour

    # Association properties via a span processor where the library has no mechanism of its own.
    if props and flavour.startswith("openllmetry-"):
        # Emulates traceloop-sdk: Traceloop.set_association_properties(props) puts the dict in the
        # context under "association_properties"; its span processor copies it onto each span.
        def traceloop_attrs(parent_context: Any) -> dict[str, str]:
            found = otel_context.get_value("association_properties", parent_context) or {}
            return {f"traceloop.association.properties.{k}": str(v) for k, v in found.items()}

        provider.add_span_processor(make_stamp_processor(traceloop_attrs))
    elif props and (flavour == "openai-v2" or flavour.startswith("none-")):
        stamped = {
            "thinkmeter.task_type": props.get("task_type"),
            "thinkmeter.tier": props.get("tier"),
            "user.id": props.get("user_id"),
            "session.id": props.get("session_id"),
        }
        stamped = {k: v for k, v in stamped.items() if v is not None}
        provider.add_span_processor(make_stamp_processor(lambda _ctx: stamped))

    otlp = recording(make_exporter(args))
    provider.add_span_processor(BatchSpanProcessor(otlp))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # Global too: openlit and the anthropic SDK's own spans use the global provider.
    trace.set_tracer_provider(provider)

    run_scope = instrument(flavour, provider, args)

    import contextlib

    requests_made: list[dict[str, Any]] = []
    token = None
    if props and flavour.startswith("openllmetry-"):
        token = otel_context.attach(otel_context.set_value("association_properties", dict(props)))
    try:
        with run_scope(props):
            for _ in range(args.calls):
                if flavour in OPENAI_FLAVOURS:
                    requests_made += call_openai(args)
                else:
                    requests_made += call_anthropic(args)
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(token)

    provider.force_flush()
    finished = memory.get_finished_spans()
    if args.dump_spans:
        with open(args.dump_spans, "w") as f:
            json.dump([span_to_dict(s) for s in finished], f, indent=2, default=str)
    provider.shutdown()

    summary = {
        "flavour": flavour,
        "service_name": service_name,
        "protocol": args.protocol,
        "stream": args.stream,
        "calls": len(requests_made),
        "response_ids": [r["response_id"] for r in requests_made],
        "requests": requests_made,
        "spans_finished": len(finished),
        "spans_exported": otlp.spans_ok,
        "export_results": otlp.results,
        "span_names": [s.name for s in finished],
        "association": props,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    return 0


def instrument(flavour: str, provider: Any, args: argparse.Namespace) -> Any:
    """Activate the flavour's instrumentor; returns a context-manager factory taking the association props."""
    import contextlib

    @contextlib.contextmanager
    def nothing(_props: dict[str, str]) -> Any:
        yield

    if flavour == "openllmetry-openai":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return nothing
    if flavour == "openllmetry-anthropic":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=provider)
        return nothing
    if flavour == "openinference-openai":
        from openinference.instrumentation import using_attributes
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIOpenAIInstrumentor

        OIOpenAIInstrumentor().instrument(tracer_provider=provider)

        @contextlib.contextmanager
        def oi_scope(props: dict[str, str]) -> Any:
            if not props:
                yield
                return
            kwargs: dict[str, Any] = {}
            if "user_id" in props:
                kwargs["user_id"] = props["user_id"]
            if "session_id" in props:
                kwargs["session_id"] = props["session_id"]
            metadata = {k: v for k, v in props.items() if k in ("task_type", "tier")}
            if metadata:
                kwargs["metadata"] = metadata
            with using_attributes(**kwargs):
                yield

        return oi_scope
    if flavour in ("openlit", "openlit-anthropic"):
        import openlit
        from openlit._instrumentors import MODULE_NAME_MAP

        keep = "anthropic" if flavour == "openlit-anthropic" else "openai"
        pricing = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(OPENLIT_PRICING, pricing)
        pricing.close()
        # openlit reuses the global SDK TracerProvider set above (no exporter of its own: no
        # otlp_endpoint, and OTEL_EXPORTER_OTLP_ENDPOINT is not set); metrics/events off.
        openlit.init(
            service_name=f"instrumented-{flavour}",
            environment="test",
            disable_metrics=True,
            disable_events=True,
            capture_message_content=not args.no_content,
            pricing_json=pricing.name,
            disabled_instrumentors=[name for name in MODULE_NAME_MAP if name != keep],
        )

        @contextlib.contextmanager
        def openlit_scope(props: dict[str, str]) -> Any:
            if not props:
                yield
                return
            from openlit.__helpers import reset_custom_attributes, set_custom_attributes

            attrs = {
                "thinkmeter.task_type": props.get("task_type"),
                "thinkmeter.tier": props.get("tier"),
                "user.id": props.get("user_id"),
                "session.id": props.get("session_id"),
            }
            tok = set_custom_attributes({k: v for k, v in attrs.items() if v is not None})
            try:
                yield
            finally:
                reset_custom_attributes(tok)

        return openlit_scope
    if flavour == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2OpenAIInstrumentor

        V2OpenAIInstrumentor().instrument(tracer_provider=provider)
        return nothing
    return nothing  # none-*


def call_openai(args: argparse.Namespace) -> list[dict[str, Any]]:
    import openai

    from tests.ingest.clients.fake_provider import openai_base_url

    client = openai.OpenAI(base_url=openai_base_url(args.provider_url), api_key="sk-fake-test", max_retries=0)
    extra: dict[str, Any] = {"user": args.user_id} if args.user_id else {}
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    out: list[dict[str, Any]] = []

    if args.stream:
        stream = client.chat.completions.create(
            model=OPENAI_REQUEST_MODEL,
            messages=messages,
            reasoning_effort="high",
            max_completion_tokens=4000,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        chat_id = None
        for chunk in stream:
            chat_id = chat_id or chunk.id
        out.append({"api": "chat.completions", "stream": True, "response_id": chat_id})
    else:
        resp = client.chat.completions.create(
            model=OPENAI_REQUEST_MODEL,
            messages=messages,
            reasoning_effort="high",
            max_completion_tokens=4000,
            **extra,
        )
        out.append({"api": "chat.completions", "stream": False, "response_id": resp.id})

    if args.stream:
        rstream = client.responses.create(
            model=OPENAI_REQUEST_MODEL,
            instructions=SYSTEM,
            input=PROMPT,
            reasoning={"effort": "high"},
            max_output_tokens=4000,
            stream=True,
            **extra,
        )
        rid = None
        for event in rstream:
            if getattr(event, "type", "") == "response.completed":
                rid = event.response.id
        out.append({"api": "responses", "stream": True, "response_id": rid})
    else:
        r = client.responses.create(
            model=OPENAI_REQUEST_MODEL,
            instructions=SYSTEM,
            input=PROMPT,
            reasoning={"effort": "high"},
            max_output_tokens=4000,
            **extra,
        )
        out.append({"api": "responses", "stream": False, "response_id": r.id})
    return out


def call_anthropic(args: argparse.Namespace) -> list[dict[str, Any]]:
    import warnings

    import anthropic

    from tests.ingest.clients.fake_provider import anthropic_base_url

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    client = anthropic.Anthropic(
        base_url=anthropic_base_url(args.provider_url), api_key="sk-ant-fake", max_retries=0
    )
    kwargs: dict[str, Any] = {
        "model": ANTHROPIC_REQUEST_MODEL,
        "max_tokens": 4096,
        "system": SYSTEM,
        "thinking": {"type": "enabled", "budget_tokens": THINKING_BUDGET},
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if args.user_id:
        kwargs["metadata"] = {"user_id": args.user_id}
    if args.stream:
        msg_id = None
        for event in client.messages.create(stream=True, **kwargs):
            if event.type == "message_start":
                msg_id = event.message.id
        return [{"api": "messages", "stream": True, "response_id": msg_id}]
    m = client.messages.create(**kwargs)
    return [{"api": "messages", "stream": False, "response_id": m.id}]


def run_in_subprocess(
    flavour: str,
    provider_url: str,
    otlp_endpoint: str,
    api_key: str,
    *extra_args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> dict[str, Any]:
    """Run this script for one flavour in a fresh interpreter (same venv) and return its summary.

    ``extra_args`` are further CLI options, e.g. ``"--stream", "--task-type", "code_review"``.
    Raises RuntimeError with the child's stderr when it fails.
    """
    import subprocess
    from pathlib import Path

    repo_root = Path(__file__).resolve().parents[3]
    cmd = [
        sys.executable,
        "-m",
        "tests.ingest.clients.run_instrumented",
        flavour,
        "--provider-url",
        provider_url,
        "--otlp-endpoint",
        otlp_endpoint,
        "--api-key",
        api_key,
        *extra_args,
    ]
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), child_env.get("PYTHONPATH")]))
    proc = subprocess.run(
        cmd, cwd=repo_root, env=child_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run_instrumented {flavour} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
