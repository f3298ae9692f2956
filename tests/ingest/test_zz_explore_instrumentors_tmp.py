"""scratch (not in repo): dump stored rows per flavour"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
import pytest
from tests.ingest.clients.fake_provider import FakeProvider
from tests.ingest.clients.run_instrumented import run_in_subprocess

COLS = ("name, instrumentation, trace_id, span_id, parent_span_id, provider, model, request_model, operation, task_type, tier,"
        " user_id, session_id, response_id, thinking_budget, reasoning_effort, ttft_ms, input_tokens, cache_read_tokens,"
        " cache_write_tokens, output_tokens, reasoning_tokens, reasoning_estimated, has_usage, counted, cost_input,"
        " cost_cache_read, cost_cache_write, cost_output_visible, cost_reasoning, cost_total, reported_cost, price_id, priced")

@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("flavour", ["openllmetry-openai","openllmetry-anthropic","openinference-openai","openlit","openlit-anthropic","openai-v2","none-anthropic"])
def test_explore(flavour, live_server, ch, project, project_key):
    with FakeProvider() as fp:
        def run(stream):
            args = ["--task-type","code_review","--tier","2","--user-id","u-42","--session-id","s-7"] + (["--stream"] if stream else [])
            return run_in_subprocess(flavour, fp.base_url, live_server.url + "/v1/traces", project_key, *args)
        with ThreadPoolExecutor(2) as ex:
            sums = list(ex.map(run, [False, True]))
    rows = ch.execute(f"SELECT {COLS} FROM spans WHERE project_id IN {ch.PROJECT_PARAM} ORDER BY response_id, name", tag="x", projects=project.pk)
    with open(f"/tmp/tmx/{flavour}.json", "w") as f:
        json.dump({"summaries": sums, "rows": rows}, f, indent=1, default=str)
