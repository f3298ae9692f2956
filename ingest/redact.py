"""Redact secrets and personal data from prompt and completion text before storing it."""

from __future__ import annotations

import re

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"\b(?:sk|pk|rk|tm)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_]api\d\d[-_])?[A-Za-z0-9_-]{16,}\b"), "[api-key]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[api-key]"),
    # Google, GitHub, Slack, Hugging Face and xAI keys.
    (re.compile(r"\b(?:AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
                r"|xox[abprs]-[A-Za-z0-9-]{10,}|hf_[A-Za-z0-9]{30,}|xai-[A-Za-z0-9]{20,})"), "[api-key]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "[token]"),  # JWT
    (re.compile(r"\b(?:Bearer\s+)[A-Za-z0-9._~+/-]{16,}=*"), "Bearer [token]"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[card]"),
)


def redact(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text
