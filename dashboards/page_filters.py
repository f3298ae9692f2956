"""The state every dashboard page shares, read from and written back to the query string.

``?range=24h|7d|30d|90d|mtd|custom`` (with ``from``/``to`` for custom), ``project=<slug>``
and one parameter per filter dimension (service, environment, model, tier, task_type,
user). Keeping all of it in the URL makes any view shareable by copying the address.
The preset ranges (and a custom range without an end) end with the current hour, as the
usage API's default range does: everything stored so far is in, and the range falls on
hour boundaries, which the rollups serve without reading raw spans.
Pure apart from reading a ``QueryDict``-like mapping: no database access here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

RANGES: dict[str, str] = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "mtd": "Month to date",
    "custom": "Custom",
}
DEFAULT_RANGE = "30d"
RANGE_SPANS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
               "90d": timedelta(days=90)}
# URL parameter → spans column.
FILTER_DIMENSIONS: dict[str, str] = {
    "service": "service",
    "environment": "environment",
    "model": "model",
    "tier": "tier",
    "task_type": "task_type",
    "user": "user_id",
}
MAX_CUSTOM_DAYS = 400


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` (a whole day; as an end, the day is included) or an ISO-8601 datetime (UTC if naive)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO-8601 time") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass
class PageFilters:
    """Time range, project and dimension filters of one page view."""

    range_key: str
    start: datetime
    end: datetime
    project: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def range_label(self) -> str:
        if self.range_key == "custom":
            last = self.end - timedelta(microseconds=1)
            return f"{self.start:%b %d, %Y} – {last:%b %d, %Y}"
        return RANGES[self.range_key]

    @property
    def interval(self) -> str:
        """Time bucket for charts: hours up to two days, days up to 120, weeks beyond."""
        span = self.end - self.start
        if span <= timedelta(days=2):
            return "hour"
        if span <= timedelta(days=120):
            return "day"
        return "week"

    @property
    def column_filters(self) -> dict[str, str]:
        """Filters keyed by spans column (``user`` → ``user_id``), for the query layer."""
        return {FILTER_DIMENSIONS[name]: value for name, value in self.filters.items()}

    def params(self, **overrides: str | None) -> dict[str, str]:
        """The query-string parameters of this view, with ``overrides`` (None removes one)."""
        out: dict[str, str] = {"range": self.range_key}
        if self.range_key == "custom":
            out["from"] = self.start.date().isoformat()
            out["to"] = (self.end - timedelta(microseconds=1)).date().isoformat()
        if self.project:
            out["project"] = self.project
        out.update(self.filters)
        out.update(self.extra)
        for key, value in overrides.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def querystring(self, **overrides: str | None) -> str:
        return urlencode(self.params(**overrides))

    def api_querystring(self, **extra: str) -> str:
        """Parameters for ``/api/v1/usage`` covering the same view (explicit from/to, ISO-8601 UTC)."""
        params: dict[str, str] = {"from": self.start.isoformat().replace("+00:00", "Z"),
                                  "to": self.end.isoformat().replace("+00:00", "Z")}
        if self.project:
            params["project"] = self.project
        params.update(self.column_filters)
        params.update(extra)
        return urlencode(params)


def parse(query: Mapping[str, str], now: datetime | None = None, extra_keys: tuple[str, ...] = ()) -> PageFilters:
    """Read a page's state from its query string; bad values fall back to defaults with an error to show."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    hour_end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # the end of the current hour
    errors: list[str] = []
    range_key = (query.get("range") or "").strip()
    if range_key and range_key not in RANGES:
        errors.append(f"Unknown range {range_key!r}; showing the last 30 days.")
        range_key = ""
    if not range_key:
        range_key = "custom" if query.get("from") else DEFAULT_RANGE
    start = end = now
    if range_key == "custom":
        try:
            start = parse_moment(query.get("from") or "")
            end = parse_moment(query["to"], end=True) if query.get("to") else hour_end
            if end <= start:
                raise ValueError("the range must end after it starts")
            if end - start > timedelta(days=MAX_CUSTOM_DAYS):
                raise ValueError(f"a range may cover at most {MAX_CUSTOM_DAYS} days")
        except (ValueError, KeyError) as exc:
            errors.append(f"Custom range: {exc}. Showing the last 30 days.")
            range_key = DEFAULT_RANGE
    if range_key == "mtd":
        start, end = month_start(now), hour_end
    elif range_key in RANGE_SPANS:
        start, end = hour_end - RANGE_SPANS[range_key], hour_end
    filters: dict[str, str] = {}
    for name in FILTER_DIMENSIONS:
        value = (query.get(name) or "").strip()
        if not value:
            continue
        if name == "tier" and not (value.isdigit() and 0 <= int(value) <= 255):
            errors.append(f"Tier must be a number, got {value!r}; the tier filter is ignored.")
            continue
        filters[name] = value[:200]
    extra = {key: str(query.get(key)).strip()[:200] for key in extra_keys if (query.get(key) or "").strip()}
    return PageFilters(range_key=range_key, start=start, end=end, project=(query.get("project") or "").strip(),
                       filters=filters, errors=errors, extra=extra)
