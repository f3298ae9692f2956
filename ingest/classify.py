"""Per-project classification rules: task type (and tier) for spans that carry none.

Rules are tried in order; the first match wins. Fields: an attribute's value, the
service name, the span name, or a regex search on the captured prompt text.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from ingest.decode import DecodedSpan
from ingest.normalize import Normalized
from thinkmeter import generations

UNCLASSIFIED = "unclassified"
REFRESH_S = 30.0


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    attribute: str
    pattern: re.Pattern[str]
    task_type: str
    tier: int | None


def apply(rules: list[Rule], span: DecodedSpan, n: Normalized) -> tuple[str, int | None]:
    for rule in rules:
        if rule.field == "attribute":
            subject = span.attributes.get(rule.attribute, span.resource.get(rule.attribute))
            text = "" if subject is None else str(subject)
        elif rule.field == "service":
            text = n.service
        elif rule.field == "span_name":
            text = span.name
        else:
            text = n.prompt_text
        if text and rule.pattern.search(text):
            return rule.task_type, rule.tier
    return UNCLASSIFIED, None


class RuleCache:
    """Rules per project, read again after REFRESH_S or when any process changed rules
    (:data:`thinkmeter.generations.classification_rules`)."""

    def __init__(self) -> None:
        self._rules: dict[int, tuple[float, list[Rule]]] = {}
        self._lock = threading.Lock()
        self._generation: str | None = None

    def rules_for(self, project_id: int) -> list[Rule]:
        now = time.monotonic()
        generation = generations.classification_rules.current()
        if generation != self._generation:
            with self._lock:
                self._rules.clear()
                self._generation = generation
        cached = self._rules.get(project_id)
        if cached and now - cached[0] < REFRESH_S:
            return cached[1]
        from ingest.models import ClassificationRule

        rules = []
        for r in ClassificationRule.objects.filter(project_id=project_id).order_by("position", "id"):
            try:
                rules.append(Rule(r.field, r.attribute, re.compile(r.pattern), r.task_type, r.tier))
            except re.error:
                continue
        with self._lock:
            self._rules[project_id] = (now, rules)
        return rules

    def invalidate(self, project_id: int | None = None) -> None:
        """Forget rules here now, and tell every other process."""
        with self._lock:
            if project_id is None:
                self._rules.clear()
            else:
                self._rules.pop(project_id, None)
        generations.classification_rules.bump()


rule_cache = RuleCache()
