"""Policies: every kind parses from JSON and YAML; invalid ones fail saying what is wrong and where."""

from __future__ import annotations

import pytest

from simulator.engine import policies as p
from simulator.engine.policies import Config, PolicyError


def errors_of(data: object) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        p.parse_policy(data)
    return caught.value.errors


def test_issue_examples_parse() -> None:
    static = p.parse_text('{"kind": "static", "tier": 1, "thinking_budget": 0}')
    assert static == p.Static(Config(1, 0))
    task_map = p.parse_text('{"kind": "task_map", "routes": {"code_generation": {"tier": 3, "thinking_budget": 10000}},'
                            ' "default": {"tier": 1, "thinking_budget": 0}}')
    assert isinstance(task_map, p.TaskMap)
    assert task_map.routes == {"code_generation": Config(3, 10000)} and task_map.default == Config(1, 0)
    cascade = p.parse_text('{"kind": "cascade", "steps": [{"tier": 1, "thinking_budget": 0}, '
                           '{"tier": 3, "thinking_budget": 10000}], "accept": {"min_quality": 0.5}}')
    assert cascade == p.Cascade((Config(1, 0), Config(3, 10000)), 0.5)


def test_every_kind_parses_from_yaml_and_nests() -> None:
    policy = p.parse_text("""
kind: quota
per: session
daily_reasoning_tokens: 50000
downgrade: {tier: 1, thinking_budget: 0}
policy:
  kind: task_map
  routes:
    code_generation:
      kind: cascade
      steps: [{tier: 2, thinking_budget: 4000}, {tier: 3, thinking_budget: 10000}]
      accept: {min_quality: 0.6}
    support:
      kind: classifier
      rules:
        - when: {keywords: [refund, "Chargeback"], prompt_tokens: {gte: 100, lt: 5000}}
          complexity: high
        - when: {attributes: {app.plan: [pro, team]}, service: billing}
          complexity: high
      default: low
      routes:
        low: {tier: 1, thinking_budget: 0}
        high: {kind: threshold, score: {attribute: router.score}, calibrate: {strong_share: 0.25},
               strong: {tier: 3, thinking_budget: 10000}, weak: {tier: 2, thinking_budget: 0}}
  default: {kind: random, choices: [{tier: 1, thinking_budget: 0, weight: 3}, {tier: 2, thinking_budget: 4000}], seed: 7}
""")
    assert isinstance(policy, p.Quota) and policy.per == "session" and policy.daily_reasoning_tokens == 50000
    assert isinstance(policy.policy, p.TaskMap)
    classifier = policy.policy.routes["support"]
    assert isinstance(classifier, p.Classifier)
    assert classifier.rules[0].keywords == ("refund", "chargeback")  # matched case-insensitively
    assert classifier.rules[0].prompt_gte == 100 and classifier.rules[0].prompt_lt == 5000
    assert classifier.rules[1].attributes == (("app.plan", ("pro", "team")),)
    assert p.attributes_of(policy) == {"app.plan", "router.score"}
    assert p.keyword_sets_of(policy) == {("refund", "chargeback")}
    assert Config(3, 10000) in p.configs_of(policy) and Config(2, 0) in p.configs_of(policy)
    oracle = p.parse_text('{"kind": "oracle", "candidates": [{"tier": 1, "thinking_budget": 0}], "min_quality": 0.7}')
    assert oracle == p.Oracle((Config(1, 0),), 0.7)
    assert p.parse_text('{"kind": "oracle"}') == p.Oracle(None, None)


@pytest.mark.parametrize(("data", "expected"), [
    ({"kind": "task_map", "routes": {"code_generation": {"tier": 4, "thinking_budget": 10000}},
      "default": {"tier": 1, "thinking_budget": 0}},
     ["policy.routes.code_generation.tier: must be 1, 2 or 3, not 4"]),
    ({"kind": "static", "tier": 1, "thinking_budget": -5},
     ["policy.thinking_budget: must be a whole number of tokens from 0 to 1,000,000, not -5"]),
    ({"kind": "static", "tier": True, "thinking_budget": 0}, ["policy.tier: must be 1, 2 or 3, not True"]),
    ({"kind": "static", "tier": 2}, ["policy.thinking_budget: required"]),
    ({"kind": "static", "tier": 2, "thinking_budget": 0, "model": "o3"},
     ["policy.model: unknown key (allowed: thinking_budget, tier)"]),
    ({"kind": "cascade", "steps": [{"tier": 1, "thinking_budget": 0}], "accept": {"min_quality": 1.5}},
     ["policy.steps: must list at least two configurations, cheapest first",
      "policy.accept.min_quality: must be a quality from 0 to 1, not 1.5"]),
    ({"kind": "threshold", "strong": {"tier": 3, "thinking_budget": 0}, "weak": {"tier": 1, "thinking_budget": 0}},
     ['policy: give either threshold or calibrate: {"strong_share": 0..1}']),
    ({"kind": "threshold", "score": "vibes", "threshold": 0.5, "strong": {"tier": 3, "thinking_budget": 0},
      "weak": {"tier": 1, "thinking_budget": 0}},
     ['policy.score: unknown score \'vibes\' (one of difficulty, prompt_tokens, or {"attribute": "<key>"})']),
    ({"kind": "threshold", "calibrate": {"strong_share": 2}, "strong": {"tier": 3, "thinking_budget": 0},
      "weak": {"tier": 1, "thinking_budget": 0}},
     ["policy.calibrate.strong_share: must be a share from 0 to 1, not 2"]),
    ({"kind": "classifier", "rules": [{"when": {"task_type": "x", "colour": "red"}, "complexity": "extreme"}],
      "default": "low", "routes": {"low": {"tier": 1, "thinking_budget": 0}}},
     ["policy.rules[0].complexity: 'extreme' has no entry in the policy's routes",
      "policy.rules[0].when.colour: unknown condition (one of task_type, service, environment, prompt_tokens, "
      "keywords, attributes)"]),
    ({"kind": "classifier", "rules": [], "default": "mid", "routes": {"low": {"tier": 1, "thinking_budget": 0}}},
     ["policy.default: complexity 'mid' has no entry in policy.routes"]),
    ({"kind": "quota", "policy": {"kind": "static", "tier": 1, "thinking_budget": 0}, "per": "team",
      "daily_reasoning_tokens": 1000, "downgrade": {"tier": 1, "thinking_budget": 0}},
     ["policy.per: must be 'user' or 'session', not 'team'"]),
    ({"kind": "quota", "policy": {"kind": "teleport"}, "daily_reasoning_tokens": 0,
      "downgrade": {"kind": "static", "tier": 1, "thinking_budget": 0}},
     ["policy.policy.kind: unknown kind 'teleport' (one of static, task_map, classifier, threshold, cascade, quota, "
      "oracle, random)",
      "policy.daily_reasoning_tokens: must be a number of tokens ≥ 1, not 0",
      'policy.downgrade: must be a configuration {"tier": ..., "thinking_budget": ...}, not a policy']),
    ({"kind": "random", "choices": [{"tier": 1, "thinking_budget": 0, "weight": 0}]},
     ["policy.choices: the weights must not all be 0"]),
    ({"tier": 1, "thinking_budget": 0}, ["policy.kind: required (one of static, task_map, classifier, threshold, "
                                         "cascade, quota, oracle, random)"]),
    (["static"], ["policy: must be an object, not a list"]),
])
def test_validation_errors_say_what_and_where(data: object, expected: list[str]) -> None:
    assert errors_of(data) == expected


def test_text_errors_name_the_line() -> None:
    with pytest.raises(PolicyError) as caught:
        p.parse_text('{"kind": "static",, "tier": 1}')
    assert caught.value.errors[0].startswith("policy: not valid JSON (line 1, column 19)")
    with pytest.raises(PolicyError) as caught:
        p.parse_text("kind: static\ntier: [1\n")
    assert caught.value.errors[0].startswith("policy: not valid YAML (line 3, column 1)")
    with pytest.raises(PolicyError, match="empty"):
        p.parse_text("   ")


def test_sweeps_parse_and_set_the_parameter() -> None:
    sweep = p.parse_sweep("threshold:0..1:5")
    assert sweep.path == ("threshold",) and sweep.values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    data = {"kind": "threshold", "calibrate": {"strong_share": 0.3}, "strong": {"tier": 3, "thinking_budget": 0},
            "weak": {"tier": 1, "thinking_budget": 0}}
    swept = p.with_value(data, sweep, 0.25)
    assert swept["threshold"] == 0.25 and "calibrate" not in swept and "calibrate" in data
    assert p.parse_policy(swept) == p.Threshold(score="difficulty", strong=Config(3, 0), weak=Config(1, 0),
                                                threshold=0.25)
    cascade = {"kind": "cascade", "steps": [{"tier": 1, "thinking_budget": 0}, {"tier": 3, "thinking_budget": 0}],
               "accept": {"min_quality": 0.5}}
    assert p.with_value(cascade, p.parse_sweep("accept.min_quality:0.4..0.8:3"), 0.6)["accept"]["min_quality"] == 0.6
    for bad, message in (("threshold", "PARAM:LOW..HIGH:POINTS"), ("threshold:1..0:5", "LOW ≤ HIGH"),
                         ("threshold:0..1:0", "from 1 to 200"), ("threshold:a..1:3", "must be numbers")):
        with pytest.raises(PolicyError, match=message):
            p.parse_sweep(bad)
    with pytest.raises(PolicyError, match="has no 'accept.max_cost'"):
        p.with_value(cascade, p.parse_sweep("accept.max_cost:0..1:3"), 0.5)
