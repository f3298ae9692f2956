import json, pytest
from django.test import Client
from tests.ingest.otlp_builders import make_request, span_dict, to_otlp_json, llm_span
pytestmark = pytest.mark.django_db

def post(c, key, body, ct):
    r = c.generic("POST", "/v1/traces", body, content_type=ct, HTTP_AUTHORIZATION="Bearer " + key)
    return r.status_code, r.content[:300]

def test_probe(ch, project_key):
    c = Client(raise_request_exception=False)
    doc = to_otlp_json(make_request([llm_span("o3", attributes={"user.id": "x"})]))
    cases = {}
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "\ud800bad"
    cases["surrogate name"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "user.id", "value": {"stringValue": "\udcff"}})
    cases["surrogate attr"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = str(2**64-1); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["endTimeUnixNano"] = str(2**64-1)
    cases["max time"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": 1e300}})
    cases["huge tokens"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(-2**63)}})
    cases["neg tokens"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "thinkmeter.tier", "value": {"intValue": str(2**63-1)}})
    cases["huge tier"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "x", "value": {"doubleValue": "NaN"}})
    cases["nan"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = {"a": 1}
    cases["attrs dict"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = 99
    cases["kind 99"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["resource"] = []
    cases["resource list"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"] = [{"timeUnixNano": "1", "name": "gen_ai.content.prompt", "attributes": [{"key": "gen_ai.prompt", "value": {"stringValue": "\ud800"}}]}]
    cases["event surrogate"] = json.dumps(d).encode()
    d = json.loads(json.dumps(doc)); d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "k", "value": {"arrayValue": {"values": [{"kvlistValue": {"values": [{"key": "a", "value": {"bytesValue": "AAEC"}}]}}]}}})
    cases["nested arr"] = json.dumps(d).encode()
    cases["deep"] = ("[" * 100000 + "]" * 100000).encode()
    cases["deep obj"] = ('{"a":' * 50000 + '1' + '}' * 50000).encode()
    cases["bad utf8"] = b'{"resourceSpans": [{"x": "\xff\xfe"}]}'
    cases["resourceSpans str"] = b'{"resourceSpans": "x"}'
    cases["resourceSpans [1]"] = b'{"resourceSpans": [1]}'
    cases["scope [null]"] = b'{"resourceSpans": [{"scopeSpans": [null]}]}'
    cases["spans str"] = b'{"resourceSpans": [{"scopeSpans": [{"spans": [1, "a", null]}]}]}'
    for name, body in cases.items():
        print(name, post(c, project_key, body, "application/json"))
    pr = make_request([llm_span("o3")]).SerializeToString()
    for i in (1, 5, 17, len(pr)//2, len(pr)-1):
        print("trunc", i, post(c, project_key, pr[:i], "application/x-protobuf")[0])
