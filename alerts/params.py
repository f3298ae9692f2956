"""Rule parameters and filters: parsing, validation and defaults (pure: no Django, no ClickHouse).

A rule is ``{"kind", "name", "params", "filters", "channels"}``. :func:`parse_params`
turns what a person or the API sent into the complete parameter dict the evaluators
read (every default filled in), or raises :class:`ParamError` with one message per
bad field. :func:`parse_filters` does the same for filters, which narrow the calls a
rule looks at (task type, tier, model, service, environment, user).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

KINDS: tuple[str, ...] = ("runaway", "quota", "budget", "spike")
METRICS: tuple[str, ...] = ("reasoning_tokens", "cost")
SCOPES: tuple[str, ...] = ("span", "trace")
QUOTA_SUBJECTS: tuple[str, ...] = ("user", "session", "api_key")

# filter name → spans column
FILTER_COLUMNS: dict[str, str] = {
    "task_type": "task_type", "tier": "tier", "model": "model", "service": "service",
    "environment": "environment", "user": "user_id",
}
WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW_SECONDS = 90 * 86400

DEFAULTS: dict[str, dict[str, Any]] = {
    "runaway": {"multiplier": 2.0, "window": "7d", "min_samples": 50, "metric": "reasoning_tokens",
                "scope": "span", "absolute_cap": None},
    "quota": {"metric": "reasoning_tokens", "per": "user", "limit": None, "warn_at": 0.8, "fire_at": 1.0,
              "period": "day"},
    "budget": {"cap_usd": None, "forecast": True, "warn_at": None},
    "spike": {"metric": "cost", "z": 4.0, "min_value": None, "baseline_days": 14, "min_baseline": 3},
}
SPIKE_MIN_VALUE = {"cost": 1.0, "reasoning_tokens": 10_000.0}


class ParamError(ValueError):
    """Invalid rule parameters or filters; ``errors`` maps each bad field to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def parse_window(text: Any) -> int:
    """``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` → seconds (at most 90 days)."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError('a window is a number and a unit, like "7d", "12h" or "30m"')
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = WINDOW.match(text)
        if not match:
            raise ValueError(f'{text!r} is not a window: use a number and a unit m, h, d or w, like "7d"')
        seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]
    if not math.isfinite(seconds) or seconds < 3600 or seconds > MAX_WINDOW_SECONDS:
        raise ValueError("the window must be between 1 hour and 90 days")
    return int(seconds)


def _number(value: Any, field: str, errors: dict[str, str], *, minimum: float | None = None,
            above: float | None = None, maximum: float | None = None, integer: bool = False) -> Any:
    if isinstance(value, bool) or value is None:
        errors[field] = "must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors[field] = "must be a number"
        return None
    if not math.isfinite(number):
        errors[field] = "must be a finite number"
        return None
    if integer and number != int(number):
        errors[field] = "must be a whole number"
        return None
    if minimum is not None and number < minimum:
        errors[field] = f"must be at least {minimum:g}"
    elif above is not None and number <= above:
        errors[field] = f"must be more than {above:g}"
    elif maximum is not None and number > maximum:
        errors[field] = f"must be at most {maximum:g}"
    return int(number) if integer else number


def _choice(value: Any, field: str, choices: tuple[str, ...], errors: dict[str, str]) -> Any:
    if value not in choices:
        errors[field] = f"must be one of {', '.join(choices)}"
    return value


def parse_params(kind: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The complete, validated parameters of a rule of ``kind`` (defaults filled in)."""
    if kind not in KINDS:
        raise ParamError({"kind": f"must be one of {', '.join(KINDS)}"})
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ParamError({"params": "must be an object"})
    unknown = sorted(set(raw) - set(DEFAULTS[kind]))
    errors: dict[str, str] = {}
    if unknown:
        errors["params"] = f"unknown for a {kind} rule: {', '.join(unknown)} (known: {', '.join(DEFAULTS[kind])})"
    params = {**DEFAULTS[kind], **{k: v for k, v in raw.items() if k in DEFAULTS[kind]}}
    if kind == "runaway":
        params["multiplier"] = _number(params["multiplier"], "multiplier", errors, above=0, maximum=1000)
        try:
            params["window"] = describe_window(parse_window(params["window"]))
        except ValueError as exc:
            errors["window"] = str(exc)
        params["min_samples"] = _number(params["min_samples"], "min_samples", errors, minimum=1, integer=True)
        _choice(params["metric"], "metric", METRICS, errors)
        _choice(params["scope"], "scope", SCOPES, errors)
        if params["absolute_cap"] is not None:
            params["absolute_cap"] = _number(params["absolute_cap"], "absolute_cap", errors, above=0)
    elif kind == "quota":
        _choice(params["metric"], "metric", METRICS, errors)
        _choice(params["per"], "per", QUOTA_SUBJECTS, errors)
        if params["limit"] is None:
            errors["limit"] = "required: the quota per subject and day (tokens, or USD for metric cost)"
        else:
            params["limit"] = _number(params["limit"], "limit", errors, above=0)
        params["warn_at"] = _number(params["warn_at"], "warn_at", errors, above=0, maximum=10)
        params["fire_at"] = _number(params["fire_at"], "fire_at", errors, above=0, maximum=10)
        if "warn_at" not in errors and "fire_at" not in errors and params["warn_at"] > params["fire_at"]:
            errors["warn_at"] = "must not be more than fire_at"
        _choice(params["period"], "period", ("day",), errors)
    elif kind == "budget":
        if params["cap_usd"] is not None:
            params["cap_usd"] = _number(params["cap_usd"], "cap_usd", errors, above=0)
        if not isinstance(params["forecast"], bool):
            errors["forecast"] = "must be true or false"
        if params["warn_at"] is not None:
            params["warn_at"] = _number(params["warn_at"], "warn_at", errors, above=0, maximum=1)
    elif kind == "spike":
        _choice(params["metric"], "metric", METRICS, errors)
        params["z"] = _number(params["z"], "z", errors, above=0, maximum=100)
        if params["min_value"] is None and params["metric"] in SPIKE_MIN_VALUE:
            params["min_value"] = SPIKE_MIN_VALUE[params["metric"]]
        else:
            params["min_value"] = _number(params["min_value"], "min_value", errors, minimum=0)
        params["baseline_days"] = _number(params["baseline_days"], "baseline_days", errors, minimum=3, maximum=60,
                                          integer=True)
        params["min_baseline"] = _number(params["min_baseline"], "min_baseline", errors, minimum=2, integer=True)
    if errors:
        raise ParamError(errors)
    return params


def parse_filters(raw: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Filters as ``{name: [values]}``; a single value may be given bare. Tiers are integers."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ParamError({"filters": "must be an object"})
    errors: dict[str, str] = {}
    filters: dict[str, list[Any]] = {}
    for name, value in raw.items():
        if name not in FILTER_COLUMNS:
            errors[str(name)] = f"unknown filter (known: {', '.join(FILTER_COLUMNS)})"
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            continue
        cleaned: list[Any] = []
        for item in values:
            if isinstance(item, bool) or not isinstance(item, str | int) or (isinstance(item, str) and not item.strip()):
                errors[name] = "values must be non-empty strings" + (" or integers" if name == "tier" else "")
                break
            if name == "tier":
                try:
                    cleaned.append(int(item))
                except ValueError:
                    errors[name] = "tiers are integers 0–255"
                    break
            else:
                cleaned.append(str(item).strip())
        else:
            filters[name] = sorted(set(cleaned), key=str)
    if errors:
        raise ParamError({f"filters.{k}": v for k, v in errors.items()})
    return filters


def row_matches(filters: Mapping[str, list[Any]], row: Mapping[str, Any]) -> bool:
    """Whether a spans row (a mapping by column name) passes every filter."""
    for name, values in filters.items():
        value = row.get(FILTER_COLUMNS[name])
        if name == "tier":
            if value is None or int(value) not in values:
                return False
        elif str(value if value is not None else "") not in values:
            return False
    return True


def describe_window(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
