"""Plotly figure builders for the dashboard pages.

Pure functions: each takes plain data (a DataFrame with the documented columns, or
lists) and returns a ``plotly.graph_objects.Figure``. No Django, no ClickHouse, so they
are tested on their own. Pages serialise them with ``fig.to_json()`` and draw them with
the plotly.js the project serves (never a CDN).

Each figure is built in one ``go.Figure(data=..., layout=...)`` call from a layout dict
(:func:`layout`): plotly's ``update_layout``/``update_xaxes`` after construction cost
about 0.1 s per figure, which a page with nine charts would feel.

Every builder handles empty input by returning a figure that says so, though the pages
show their own empty state before reaching that point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.forecast import Forecast

# Cost parts, in stacking order, with the colour each keeps on every page.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("cost_input", "Input", "#6366f1"),
    ("cost_cache", "Cache", "#a5b4fc"),
    ("cost_output", "Visible output", "#14b8a6"),
    ("cost_reasoning", "Reasoning", "#f59e0b"),
)
PALETTE = (
    "#6366f1", "#14b8a6", "#f59e0b", "#ef4444", "#8b5cf6", "#0ea5e9",
    "#84cc16", "#ec4899", "#64748b", "#f97316", "#10b981", "#a855f7",
)
KIND_COLORS = {"llm": "#6366f1", "tool": "#14b8a6", "server": "#475569", "internal": "#94a3b8", "other": "#cbd5e1"}
ERROR_COLOR = "#ef4444"


def span_color(kind: str, status: str) -> str:
    """The colour of a span in the waterfall and the span table: red for errors, else by kind."""
    return ERROR_COLOR if status == "error" else KIND_COLORS.get(kind, KIND_COLORS["other"])
FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
GRID = "#eef0f3"
AXIS = "#667085"
MONEY_AXIS = {"tickprefix": "$", "tickformat": ",.2~f"}
BUDGET_OFF_SCALE = 4.0  # the budget chart leaves out a budget line more than this × the forecast


def _axis(**overrides: Any) -> dict[str, Any]:
    return {"gridcolor": GRID, "linecolor": "#d0d5dd", "tickfont": {"color": AXIS}, "zeroline": False,
            "automargin": True, **overrides}


def _title(text: str) -> dict[str, Any]:
    return {"text": text, "font": {"size": 11, "color": AXIS}}


def layout(*, height: int = 320, show_legend: bool = True, money_axis: str | None = "y",
           xaxis: dict[str, Any] | None = None, yaxis: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The look every chart shares (no template bloat, light grid, legend on top), plus ``extra``."""
    return {
        "template": "none",
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 36 if show_legend else 12, "b": 40},
        "font": {"family": FONT, "size": 12, "color": "#1c2430"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "closest",
        "hoverlabel": {"bgcolor": "#111827", "font": {"color": "#fff", "family": FONT}},
        "showlegend": show_legend,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11},
                   "traceorder": "normal"},
        "xaxis": _axis(**(MONEY_AXIS if money_axis == "x" else {}), **(xaxis or {})),
        "yaxis": _axis(**(MONEY_AXIS if money_axis == "y" else {}), **(yaxis or {})),
        **extra,
    }


def _note(text: str, **position: Any) -> dict[str, Any]:
    return {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "font": {"size": 13, "color": AXIS}, **position}


def empty_figure(message: str = "No data in this range", height: int = 240) -> go.Figure:
    """A blank chart carrying a centred message."""
    return go.Figure(layout=layout(height=height, show_legend=False, money_axis=None, xaxis={"visible": False},
                                   yaxis={"visible": False}, annotations=[_note(message)]))


def _floats(values: Iterable[Any]) -> list[float]:
    return [float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0.0 for v in values]


def money(value: float) -> str:
    """$ with thousands separators: 2 decimals from $1, up to 4 below it."""
    if abs(value) >= 1 or value == 0:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def _bar_height(rows: int, per_row: int = 28) -> int:
    return max(180, 60 + per_row * rows)


# ---------------------------------------------------------------- finance

def budget_burn(
    daily: pd.DataFrame, *, month_start: datetime, month_end: datetime, now: datetime,
    budget: float, forecast: Forecast,
) -> go.Figure:
    """Cumulative month-to-date spend, the forecast cone to month end, and the budget line.

    ``daily``: columns ``day`` (date or datetime) and ``cost`` (spend that day), this month only.
    """
    days = pd.to_datetime(daily["day"]).tolist() if len(daily) else []
    # Actual: each day's running total drawn at the end of that day (or now, for today).
    xs: list[datetime] = [month_start]
    ys: list[float] = [0.0]
    total = 0.0
    for day, value in zip(days, _floats(daily["cost"] if len(daily) else []), strict=True):
        total += value
        xs.append(min(day.to_pydatetime().replace(tzinfo=now.tzinfo) + timedelta(days=1), now))
        ys.append(total)
    if xs[-1] < now:
        xs.append(now)
        ys.append(forecast.month_to_date)
    ys[-1] = forecast.month_to_date
    remaining = max((month_end - now).total_seconds() / 86400, 0.0)
    steps = max(int(math.ceil(remaining)), 1)
    cone_x = [now + timedelta(days=remaining * i / steps) for i in range(steps + 1)]
    cone = [forecast.at(remaining * i / steps) for i in range(steps + 1)]
    pct = int(round(forecast.confidence * 100))
    traces: list[Any] = [
        go.Scatter(x=cone_x, y=[c[1] for c in cone], mode="lines", line={"width": 0}, hoverinfo="skip",
                   showlegend=False, name="low"),
        go.Scatter(x=cone_x, y=[c[2] for c in cone], mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor="rgba(99,102,241,0.15)", name=f"{pct}% band",
                   hovertemplate="up to %{y:$,.2f}<extra>" + f"{pct}% band</extra>"),
        go.Scatter(x=cone_x, y=[c[0] for c in cone], mode="lines",
                   line={"color": "#6366f1", "dash": "dash", "width": 2}, name="Forecast",
                   hovertemplate="%{x|%b %d}: %{y:$,.2f}<extra>forecast</extra>"),
        go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#111827", "width": 2.5}, name="Spent",
                   hovertemplate="%{x|%b %d %H:%M}: %{y:$,.2f}<extra>spent</extra>"),
    ]
    # Scale to the spend when the budget is far above it (a flat line at the bottom says
    # nothing) and say where the budget is; otherwise show the budget line.
    reach = max(forecast.high, forecast.month_to_date, 0.01)
    notes = []
    if budget > 0 and budget <= reach * BUDGET_OFF_SCALE:
        traces.append(go.Scatter(
            x=[month_start, month_end], y=[budget, budget], mode="lines",
            line={"color": "#ef4444", "width": 1.5, "dash": "dot"}, name=f"Budget {money(budget)}",
            hovertemplate="budget %{y:$,.2f}<extra></extra>",
        ))
        top = max(budget, reach) * 1.08
    else:
        top = reach * 1.2
        if budget > 0:
            notes.append(_note(f"budget {money(budget)} is far above this scale · forecast "
                               f"{forecast.expected / budget:.1%} of it", x=1, y=1, xanchor="right", yanchor="bottom",
                               font={"size": 11, "color": "#ef4444"}))
    return go.Figure(data=traces, layout=layout(
        height=300, hovermode="x unified", xaxis={"range": [month_start, month_end], "tickformat": "%b %d"},
        yaxis={"range": [0, top]}, annotations=notes,
    ))


def spend_over_time(df: pd.DataFrame, *, interval: str = "day") -> go.Figure:
    """Spend per time bucket stacked by part. Columns: ``bucket`` plus the ``PARTS`` columns."""
    if df.empty:
        return empty_figure()
    x = pd.to_datetime(df["bucket"])
    fmt = "%b %d %H:%M" if interval == "hour" else "%b %d, %Y"
    traces = [
        go.Bar(x=x, y=_floats(df[column]), name=label, marker={"color": color, "line": {"width": 0}},
               hovertemplate=f"%{{x|{fmt}}}<br>{label}: %{{y:$,.4f}}<extra></extra>")
        for column, label, color in PARTS
    ]
    return go.Figure(data=traces, layout=layout(barmode="stack", bargap=0.15, hovermode="x unified"))


def spend_by(df: pd.DataFrame, *, label_column: str = "label", max_bars: int = 12) -> go.Figure:
    """Horizontal bars of spend per group, stacked by part, largest on top.

    Columns: ``label_column`` plus the ``PARTS`` columns.
    """
    if df.empty:
        return empty_figure()
    frame = df.copy()
    for column, _, _ in PARTS:
        frame[column] = _floats(frame[column])
    frame["_total"] = frame[[c for c, _, _ in PARTS]].sum(axis=1)
    frame = frame.sort_values("_total", ascending=False).head(max_bars).iloc[::-1]
    labels = [str(v) if str(v) else "(none)" for v in frame[label_column]]
    traces: list[Any] = [
        go.Bar(y=labels, x=frame[column], name=label, orientation="h", marker={"color": color},
               hovertemplate=f"%{{y}}<br>{label}: %{{x:$,.4f}}<extra></extra>")
        for column, label, color in PARTS
    ]
    traces.append(go.Scatter(
        y=labels, x=frame["_total"], mode="text", text=[money(v) for v in frame["_total"]],
        textposition="middle right", showlegend=False, hoverinfo="skip", textfont={"size": 11, "color": AXIS},
    ))
    top = float(frame["_total"].max()) if len(frame) else 0.0
    return go.Figure(data=traces, layout=layout(
        height=_bar_height(len(labels)), money_axis="x", barmode="stack", bargap=0.3,
        xaxis={"range": [0, top * 1.22 if top > 0 else 1]},
    ))


def cost_parts_donut(parts: dict[str, float]) -> go.Figure:
    """A donut of spend by part with the reasoning share in the middle. Keys: the ``PARTS`` columns."""
    values = [float(parts.get(column) or 0) for column, _, _ in PARTS]
    total = sum(values)
    if total <= 0:
        return empty_figure()
    share = values[3] / total
    pie = go.Pie(
        labels=[label for _, label, _ in PARTS], values=values, hole=0.62, sort=False,
        marker={"colors": [color for _, _, color in PARTS], "line": {"color": "#fff", "width": 2}},
        textinfo="percent", textposition="inside", insidetextorientation="horizontal",
        hovertemplate="%{label}: %{value:$,.4f} (%{percent})<extra></extra>",
    )
    return go.Figure(data=[pie], layout=layout(
        height=280, money_axis=None, margin={"l": 8, "r": 8, "t": 36, "b": 8},
        uniformtext={"minsize": 10, "mode": "hide"},
        annotations=[_note(f"<b>{share:.0%}</b><br><span style='font-size:11px'>reasoning</span>",
                           font={"size": 20})],
    ))


def reasoning_share_by(df: pd.DataFrame, *, label_column: str = "label") -> go.Figure:
    """Reasoning's share of spend per group. Columns: label, ``cost_reasoning``, ``cost_total``."""
    if df.empty:
        return empty_figure()
    frame = df.copy()
    frame["_total"] = _floats(frame["cost_total"])
    frame["_share"] = [r / t if t > 0 else 0.0
                       for r, t in zip(_floats(frame["cost_reasoning"]), frame["_total"], strict=True)]
    frame = frame[frame["_total"] > 0].sort_values("_share").tail(12)
    labels = [str(v) if str(v) else "(none)" for v in frame[label_column]]
    bar = go.Bar(
        y=labels, x=frame["_share"], orientation="h", marker={"color": "#f59e0b"},
        text=[f"{v:.0%}" for v in frame["_share"]], textposition="outside", cliponaxis=False,
        customdata=frame["_total"], hovertemplate="%{y}: %{x:.1%} of %{customdata:$,.2f}<extra></extra>",
    )
    return go.Figure(data=[bar], layout=layout(
        height=_bar_height(len(labels)), show_legend=False, money_axis=None,
        xaxis={"tickformat": ".0%", "range": [0, 1.12]},
    ))


def top_users(df: pd.DataFrame) -> go.Figure:
    """Spend per user, largest on top. Columns: ``user_id``, ``cost_total``, ``requests``."""
    if df.empty:
        return empty_figure("No per-user spend in this range")
    frame = df.copy()
    frame["_cost"] = _floats(frame["cost_total"])
    frame = frame.sort_values("_cost").tail(15)
    labels = [str(v) if str(v) else "(anonymous)" for v in frame["user_id"]]
    bar = go.Bar(
        y=labels, x=frame["_cost"], orientation="h", marker={"color": "#6366f1"},
        customdata=frame["requests"], text=[money(v) for v in frame["_cost"]], textposition="outside",
        cliponaxis=False, hovertemplate="%{y}: %{x:$,.4f} over %{customdata:,} requests<extra></extra>",
    )
    top = float(frame["_cost"].max())
    return go.Figure(data=[bar], layout=layout(
        height=_bar_height(len(labels), 26), show_legend=False, money_axis="x",
        xaxis={"range": [0, top * 1.25 if top > 0 else 1]},
    ))


# ---------------------------------------------------------------- engineering

def reasoning_distribution(df: pd.DataFrame) -> go.Figure:
    """Reasoning tokens per task class as quantile bars, with the p95 (runaway threshold) marked.

    Columns: ``task_class`` and ``p50``, ``p90``, ``p95``, ``p99`` (reasoning tokens). Each
    class gets a thin line from 0 to p99, a thick bar from p50 to p90, a dot at the median
    and a red tick at p95. The axis stops a little past the largest p95, so one class's
    long tail does not flatten the others (hovering shows every quantile).
    """
    if df.empty:
        return empty_figure()
    frame = df.sort_values("p95", ascending=True)
    labels = [str(v) for v in frame["task_class"]]
    p50, p90, p95, p99 = (_floats(frame[q]) for q in ("p50", "p90", "p95", "p99"))
    quantiles = list(zip(p50, p90, p95, p99, strict=True))
    hover = ("%{y}<br>p50 %{customdata[0]:,.0f} · p90 %{customdata[1]:,.0f} · "
             "<b>p95 %{customdata[2]:,.0f}</b> · p99 %{customdata[3]:,.0f}<extra></extra>")
    line_x: list[float | None] = []
    line_y: list[str | None] = []
    for label, top in zip(labels, p99, strict=True):
        line_x += [0.0, top, None]
        line_y += [label, label, None]
    traces = [
        go.Scatter(x=line_x, y=line_y, mode="lines", line={"color": "#c7d2fe", "width": 2}, name="0 – p99",
                   hoverinfo="skip"),
        go.Bar(y=labels, x=[b - a for a, b in zip(p50, p90, strict=True)], base=p50, orientation="h", width=0.5,
               marker={"color": "rgba(99,102,241,0.35)", "line": {"color": "#6366f1", "width": 1}},
               name="p50 – p90", customdata=quantiles, hovertemplate=hover),
        go.Scatter(y=labels, x=p50, mode="markers", name="median", marker={"color": "#3730a3", "size": 7},
                   customdata=quantiles, hovertemplate=hover),
        go.Scatter(y=labels, x=p95, mode="markers", name="p95 (runaway threshold)",
                   marker={"symbol": "line-ns", "size": 18, "line": {"width": 3, "color": "#ef4444"}},
                   customdata=quantiles, hovertemplate=hover),
    ]
    top = max(p95) if p95 else 0.0
    return go.Figure(data=traces, layout=layout(
        height=max(220, 80 + 30 * len(labels)), money_axis=None, bargap=0.4,
        xaxis={"title": _title("reasoning tokens per call"), "tickformat": ",d",
               "range": [0, top * 1.35 if top > 0 else 1]},
    ))


def latency_by_tier(df: pd.DataFrame) -> go.Figure:
    """p50/p95 latency and time to first token per tier, side by side, in seconds.

    Columns: ``tier``, ``duration_p50``, ``duration_p95``, ``ttft_p50``, ``ttft_p95`` (ms).
    """
    if df.empty:
        return empty_figure()
    frame = df.sort_values("tier")
    tiers = [f"tier {int(t)}" if int(t) else "untiered" for t in frame["tier"]]
    traces = []
    for axis, prefix in (("", "duration"), ("2", "ttft")):
        for quantile, color in (("p50", "#6366f1"), ("p95", "#c7d2fe")):
            traces.append(go.Bar(
                x=tiers, y=[v / 1000 for v in _floats(frame[f"{prefix}_{quantile}"])], name=quantile,
                marker={"color": color}, legendgroup=quantile, showlegend=not axis, xaxis=f"x{axis}",
                yaxis=f"y{axis}", hovertemplate=f"%{{x}} {quantile}: %{{y:,.2f}} s<extra></extra>",
            ))
    seconds = {"ticksuffix": " s", "tickformat": ",.3~g", "rangemode": "tozero"}
    left, right = [0.0, 0.44], [0.56, 1.0]
    return go.Figure(data=traces, layout=layout(
        height=300, money_axis=None, barmode="group", bargap=0.25,
        margin={"l": 56, "r": 16, "t": 64, "b": 40},
        legend={"orientation": "h", "x": 0, "y": 1.14, "yanchor": "bottom", "font": {"size": 11}},
        xaxis={"domain": left, "anchor": "y"}, yaxis={**seconds, "anchor": "x"},
        xaxis2=_axis(domain=right, anchor="y2"), yaxis2=_axis(**seconds, anchor="x2"),
        annotations=[_note(text, x=domain[0], y=1.0, xanchor="left", yanchor="bottom", font={"size": 12, "color": AXIS})
                     for text, domain in (("Latency", left), ("Time to first token", right))],
    ))


def escalation_rate(df: pd.DataFrame) -> go.Figure:
    """Share of requests per task type that needed more than one attempt.

    Columns: ``task_type``, ``requests``, ``escalated``.
    """
    if df.empty:
        return empty_figure()
    frame = df.copy()
    requests = _floats(frame["requests"])
    frame["_rate"] = [e / r if r else 0.0 for e, r in zip(_floats(frame["escalated"]), requests, strict=True)]
    frame = frame.sort_values("_rate")
    labels = [str(v) if str(v) else "(none)" for v in frame["task_type"]]
    bar = go.Bar(
        y=labels, x=frame["_rate"], orientation="h", marker={"color": "#8b5cf6"},
        text=[f"{v:.1%}" for v in frame["_rate"]], textposition="outside", cliponaxis=False,
        customdata=list(zip(frame["escalated"], frame["requests"], strict=True)),
        hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,} of %{customdata[1]:,})<extra></extra>",
    )
    top = float(frame["_rate"].max()) if len(frame) else 0.0
    return go.Figure(data=[bar], layout=layout(
        height=_bar_height(len(labels)), show_legend=False, money_axis=None,
        xaxis={"tickformat": ".0%", "range": [0, max(top * 1.25, 0.05)]},
    ))


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The efficient points: no other point has less-or-equal x (cost) and higher y (quality)."""
    frontier: list[tuple[float, float]] = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            frontier.append((x, y))
            best = y
    return frontier


def quality_frontier(df: pd.DataFrame) -> go.Figure:
    """Mean quality against mean reasoning tokens, one point per task class × budget, with
    each task type's Pareto frontier (the efficiency frontier).

    Columns: ``task_type``, ``budget`` (label of the thinking budget or tier),
    ``reasoning_tokens`` (mean), ``quality`` (mean, 0–1), ``requests``.
    """
    frame = df.dropna(subset=["quality"]) if not df.empty else df
    if frame.empty:
        return empty_figure("No quality scores in this range")
    traces: list[Any] = []
    max_requests = max(_floats(frame["requests"])) or 1.0
    for i, (task_type, group) in enumerate(frame.groupby("task_type", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        xs = _floats(group["reasoning_tokens"])
        ys = _floats(group["quality"])
        sizes = [7 + 13 * math.sqrt(r / max_requests) for r in _floats(group["requests"])]
        traces.append(go.Scatter(
            x=xs, y=ys, mode="markers", name=str(task_type), legendgroup=str(task_type),
            marker={"color": color, "size": sizes, "opacity": 0.75, "line": {"width": 1, "color": "#fff"}},
            customdata=list(zip(group["budget"], group["requests"], strict=True)),
            hovertemplate=f"<b>{task_type}</b> · %{{customdata[0]}}<br>%{{x:,.0f}} reasoning tokens"
                          "<br>quality %{y:.3f} · %{customdata[1]:,} requests<extra></extra>",
        ))
        front = pareto_frontier(list(zip(xs, ys, strict=True)))
        if len(front) > 1:
            traces.append(go.Scatter(
                x=[p[0] for p in front], y=[p[1] for p in front], mode="lines",
                line={"color": color, "width": 1.5, "dash": "dot"},
                legendgroup=str(task_type), showlegend=False, hoverinfo="skip",
            ))
    qualities = _floats(frame["quality"])
    low, high = max(0.0, min(qualities) - 0.08), min(1.02, max(qualities) + 0.04)
    return go.Figure(data=traces, layout=layout(
        height=340, money_axis=None,
        xaxis={"title": _title("mean reasoning tokens"), "tickformat": ",d"},
        yaxis={"title": _title("mean quality"), "range": [low, high], "tickformat": ".2f"},
    ))


def budget_vs_used(df: pd.DataFrame) -> go.Figure:
    """Requested thinking budget against reasoning tokens used, one box per budget.

    Columns: ``thinking_budget`` and ``reasoning_tokens``, one row per call (a sample is
    fine). Each box shows the spread of tokens used; a red dash marks the budget asked
    for, and the hover gives how often a call used more than its budget. Runaway calls
    can use 20× their budget, so the axis is capped to keep the boxes readable and a
    note says how many calls lie above it.
    """
    if df.empty:
        return empty_figure("No calls asked for a thinking budget in this range")
    budgets = sorted({int(b) for b in df["thinking_budget"]})
    labels = [f"{b:,}" for b in budgets]
    traces: list[Any] = []
    for budget, label in zip(budgets, labels, strict=True):
        used = _floats(df.loc[df["thinking_budget"] == budget, "reasoning_tokens"])
        over = sum(1 for u in used if u > budget) / len(used) if used else 0.0
        traces.append(go.Box(
            x=[label] * len(used), y=used, name=label, showlegend=False, boxpoints="outliers",
            marker={"color": "#6366f1", "size": 4, "opacity": 0.5}, line={"color": "#6366f1", "width": 1.5},
            fillcolor="rgba(99,102,241,0.2)",
            hovertemplate=f"budget {label}: %{{y:,.0f}} used<extra>{len(used):,} calls, {over:.0%} over budget</extra>",
        ))
    traces.append(go.Scatter(
        x=labels, y=budgets, mode="markers", name="requested budget",
        marker={"symbol": "line-ew", "size": 44, "line": {"width": 3, "color": "#ef4444"}},
        hovertemplate="requested %{y:,.0f}<extra></extra>",
    ))
    used_all = sorted(_floats(df["reasoning_tokens"]))
    top = max(max(budgets) * 1.5, used_all[int(0.98 * (len(used_all) - 1))] * 1.15)
    clipped = sum(1 for u in used_all if u > top)
    notes = [_note(f"{clipped:,} call{'s' if clipped > 1 else ''} above the chart", x=1, y=1, xanchor="right",
                   yanchor="bottom", font={"size": 11, "color": AXIS})] if clipped else []
    return go.Figure(data=traces, layout=layout(
        height=320, money_axis=None, boxgap=0.45, annotations=notes,
        xaxis={"title": _title("requested thinking budget (tokens)"), "type": "category"},
        yaxis={"title": _title("reasoning tokens used"), "tickformat": ",d", "range": [0, top]},
    ))


# ---------------------------------------------------------------- traces

def span_waterfall(df: pd.DataFrame) -> go.Figure:
    """A trace's spans as horizontal bars by start offset and duration, in start order.

    Columns: ``span_id``, ``name``, ``kind`` (llm/tool/server/internal/other), ``status``,
    ``offset_ms``, ``duration_ms``, ``depth``; optional ``cost_total``, ``reasoning_tokens``.
    Errors are red whatever their kind.
    """
    if df.empty:
        return empty_figure("This trace has no spans")
    frame = df.sort_values(["offset_ms", "depth"]).reset_index(drop=True)
    labels = [f"{'· ' * int(d)}{name}  #{i + 1}"
              for i, (name, d) in enumerate(zip(frame["name"], frame["depth"], strict=True))]
    colors = [span_color(str(kind), str(status)) for kind, status in zip(frame["kind"], frame["status"], strict=True)]
    cost = _floats(frame["cost_total"]) if "cost_total" in frame else [0.0] * len(frame)
    reasoning = _floats(frame["reasoning_tokens"]) if "reasoning_tokens" in frame else [0.0] * len(frame)
    traces: list[Any] = [go.Bar(
        y=labels, x=[max(v, 0.5) for v in _floats(frame["duration_ms"])], base=_floats(frame["offset_ms"]),
        orientation="h", marker={"color": colors}, showlegend=False,
        customdata=list(zip(frame["kind"], frame["status"], _floats(frame["duration_ms"]), cost, reasoning,
                            frame["span_id"], strict=True)),
        hovertemplate="<b>%{y}</b><br>%{customdata[0]} · %{customdata[1]}<br>starts at %{base:,.0f} ms, "
                      "lasts %{customdata[2]:,.0f} ms<br>cost $%{customdata[3]:,.6f} · "
                      "%{customdata[4]:,.0f} reasoning tokens<extra></extra>",
    )]
    for kind in sorted({str(k) for k in frame["kind"]}):
        traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=kind,
                                 marker={"color": KIND_COLORS.get(kind, KIND_COLORS["other"]), "symbol": "square"}))
    if (frame["status"] == "error").any():
        traces.append(go.Scatter(x=[None], y=[None], mode="markers", name="error",
                                 marker={"color": ERROR_COLOR, "symbol": "square"}))
    return go.Figure(data=traces, layout=layout(
        height=max(160, 70 + 24 * len(labels)), money_axis=None, bargap=0.25,
        yaxis={"autorange": "reversed", "tickfont": {"size": 11, "color": AXIS}},
        xaxis={"title": _title("ms since trace start"), "tickformat": ",d", "rangemode": "tozero"},
    ))
