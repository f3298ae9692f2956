"""``classify(prompt)``: a starting keyword classifier for task type and complexity.

Meant as a first cut for routing and tagging before a project has its own rules: it
looks for keywords per task type (code, math, analysis, extraction, summarization,
writing; else ``qa``) and for signs of complexity (proofs, design, multi-step
instructions, code blocks, long prompts, many constraints), and maps the complexity
score (0 to 1) to a model tier: 1 below 0.34, 2 below 0.67, 3 above. Deterministic,
no I/O, microseconds per prompt. Replace the tables to tune it:
``classify(prompt, task_keywords=..., complexity_keywords=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from thinkmeter_sdk.tagging import context

TASK_KEYWORDS: Mapping[str, Sequence[str]] = {
    "code": ("code", "function", "bug", "debug", "stack trace", "traceback", "exception", "compile", "refactor",
             "python", "javascript", "typescript", "java", "rust", "golang", "sql", "regex", "api", "unit test",
             "class ", "def ", "import ", "```", "error:", "segfault", "null pointer", "pull request", "code review"),
    "math": ("prove", "proof", "theorem", "lemma", "equation", "integral", "derivative", "probability",
             "calculate", "compute", "solve", "prime", "matrix", "polynomial", "geometry", "algebra", "sum of",
             "how many"),
    "analysis": ("analyze", "analyse", "compare", "evaluate", "trade-off", "tradeoff", "pros and cons", "assess",
                 "strategy", "root cause", "why does", "why is", "recommend", "critique", "risk"),
    "extraction": ("extract", "parse", "list all", "find all", "fields", "json", "table", "entities",
                   "classify", "categorize", "label", "tag the"),
    "summarization": ("summarize", "summarise", "summary", "tl;dr", "tldr", "key points", "condense",
                      "shorten", "abstract"),
    "writing": ("write", "draft", "email", "essay", "rewrite", "rephrase", "translate", "blog post", "story",
                "poem", "cover letter", "proofread"),
}
COMPLEXITY_KEYWORDS: Mapping[str, float] = {
    "step by step": 0.15, "prove": 0.2, "proof": 0.2, "derive": 0.15, "optimize": 0.15, "optimise": 0.15,
    "design": 0.12, "architecture": 0.15, "edge case": 0.12, "trade-off": 0.1, "tradeoff": 0.1,
    "algorithm": 0.12, "complexity": 0.1, "rigorous": 0.15, "formal": 0.1, "multi-step": 0.15,
    "plan": 0.08, "debug": 0.1, "root cause": 0.12, "why": 0.05, "explain": 0.05, "compare": 0.06,
    "all possible": 0.1, "constraints": 0.1, "must": 0.04, "at least": 0.04, "without using": 0.08,
    "concurrency": 0.12, "race condition": 0.15, "security": 0.08, "distributed": 0.1,
}
SIMPLE_KEYWORDS: Mapping[str, float] = {
    "briefly": -0.1, "one word": -0.15, "one sentence": -0.12, "yes or no": -0.15, "quick": -0.08,
    "short answer": -0.12, "just the": -0.08, "simple": -0.05,
}
TIER_LIMITS = (0.34, 0.67)  # complexity below the first → tier 1, below the second → tier 2, else 3


@dataclass(frozen=True)
class Classification:
    task_type: str
    tier: int
    complexity: float
    signals: tuple[str, ...]  # the keywords and features that contributed

    def context(self, user_id: str | None = None, session_id: str | None = None) -> context:
        """A ``thinkmeter_sdk.context`` tagging spans with this task type and tier."""
        return context(task_type=self.task_type, tier=self.tier, user_id=user_id, session_id=session_id)


@lru_cache(maxsize=2048)
def _pattern(keyword: str) -> re.Pattern[str]:
    """Whole words (plural and -ed/-ing forms too); plain substrings for keywords that start or end
    with punctuation or a space (``"```"``, ``"def "``)."""
    escaped = re.escape(keyword)
    start = r"\b" if keyword[:1].isalnum() else ""
    end = r"(?:s|es|d|ed|ing)?\b" if keyword[-1:].isalnum() else ""
    return re.compile(start + escaped + end)


def _hits(text: str, keywords: Sequence[str]) -> list[str]:
    return [k for k in keywords if _pattern(k.lower()).search(text)]


def classify(prompt: str, *, task_keywords: Mapping[str, Sequence[str]] = TASK_KEYWORDS,
             complexity_keywords: Mapping[str, float] = COMPLEXITY_KEYWORDS,
             default_task_type: str = "qa") -> Classification:
    """Task type, tier (1–3) and a complexity score (0–1) for a prompt."""
    if not isinstance(prompt, str):
        raise TypeError(f"classify() takes the prompt text, not {type(prompt).__name__}")
    text = prompt.lower()
    signals: list[str] = []

    best, best_hits = default_task_type, 0
    for task_type, keywords in task_keywords.items():
        hits = _hits(text, keywords)
        if len(hits) > best_hits:
            best, best_hits = task_type, len(hits)
    if best_hits:
        signals.append(f"task:{best}")

    score = 0.0
    for keyword, weight in (*complexity_keywords.items(), *SIMPLE_KEYWORDS.items()):
        if _pattern(keyword).search(text):
            score += weight
            signals.append(keyword)
    words = len(text.split())
    if words > 400:
        score += 0.25
        signals.append("long prompt")
    elif words > 120:
        score += 0.12
        signals.append("medium prompt")
    if text.count("```") >= 2:
        score += 0.1
        signals.append("code block")
    questions = text.count("?")
    if questions >= 3:
        score += 0.08
        signals.append("several questions")
    numbered = len(re.findall(r"(?m)^\s*(?:\d+[.)]|[-*])\s+", prompt))
    if numbered >= 3:
        score += 0.1
        signals.append("numbered steps")
    if best in ("math", "code"):
        score += 0.1
    complexity = round(min(max(score, 0.0), 1.0), 3)
    tier = 1 if complexity < TIER_LIMITS[0] else 2 if complexity < TIER_LIMITS[1] else 3
    return Classification(best, tier, complexity, tuple(signals))
