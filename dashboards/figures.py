"""Plotly figure builders for the dashboard pages.

Pure functions: each takes plain data (a DataFrame with the documented columns, or
lists) and returns a ``plotly.graph_objects.Figure``. No Django, no ClickHouse, so they
are tested on their own. Pages serialise them with ``fig.to_json()`` and draw them with
the plotly.js the project serves (never a CDN).

Every builder handles empty input by returning a figure that says so, but the pages
show their own empty state before reaching that point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
KIND_COLORS = {"llm": "#6366f1", "tool": "#14b8a6", "agent": "#8b5cf6", "chain": "#0ea5e9", "other": "#94a3b8"}
ERROR_COLOR = "#ef4444"
FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
GRID = "#eef0f3"
AXIS = "#667085"


def base_layout(fig: go.Figure, *, height: int = 320, legend: bool = True, money_axis: str | None = "y") -> go.Figure:
    """The look every chart shares: no template bloat, light grid, legend on top."""
    fig.update_layout(
        template="none",
        height=height,
        margin={"l": 56, "r": 16, "t": 36 if legend else 12, "b": 40},
        font={"family": FONT, "size": 12, "color": "#1c2430"},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        hovermode="closest",
        hoverlabel={"bgcolor": "#111827", "font": {"color": "#fff", "family": FONT}},
        showlegend=legend,
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11}},
    )
    fig.update_xaxes(gridcolor=GRID, linecolor="#d0d5dd", tickfont={"color": AXIS}, zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor=GRID, linecolor="#d0d5dd", tickfont={"color": AXIS}, zeroline=False, automargin=True)
    if money_axis == "y":
        fig.update_yaxes(tickprefix="$", tickformat=",.2~f")
    elif money_axis == "x":
        fig.update_xaxes(tickprefix="$", tickformat=",.2~f")
    return fig


def empty_figure(message: str = "No data in this range", height: int = 240) -> go.Figure:
    """A blank chart carrying a centred message."""
    fig = go.Figure()
    base_layout(fig, height=height, legend=False, money_axis=None)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 13, "color": AXIS})
    return fig


def _floats(values: Iterable[Any]) -> list[float]:
    return [float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0.0 for v in values]


def money(value: float) -> str:
    """$ with thousands separators: 2 decimals from $1, up to 4 below it."""
    if abs(value) >= 1 or value == 0:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def budget_burn(
    daily: pd.DataFrame, *, month_start: datetime, month_end: datetime, now: datetime,
    budget: float, forecast: Forecast,
) -> go.Figure:
    """Cumulative month-to-date spend, the forecast cone to month end, and the budget line.

    ``daily``: columns ``day`` (date or datetime) and ``cost`` (spend that day), this month only.
    """
    fig = go.Figure()
    days = pd.to_datetime(daily["day"]).tolist() if len(daily) else []
    cumulative: list[float] = []
    total = 0.0
    for value in _floats(daily["cost"] if len(daily) else []):
        total += value
        cumulative.append(total)
    # Actual: step to the end of each day so the line meets the forecast at "now".
    xs: list[datetime] = [month_start]
    ys: list[float] = [0.0]
    for day, value in zip(days, cumulative, strict=True):
        xs.append(min(day.to_pydatetime().replace(tzinfo=now.tzinfo) + timedelta(days=1), now))
        ys.append(value)
    if xs[-1] < now:
        xs.append(now)
        ys.append(forecast.month_to_date)
    ys[-1] = forecast.month_to_date
    remaining = max((month_end - now).total_seconds() / 86400, 0.0)
    steps = max(int(math.ceil(remaining)), 1)
    cone_x = [now + timedelta(days=remaining * i / steps) for i in range(steps + 1)]
    cone = [forecast.at(remaining * i / steps) for i in range(steps + 1)]
    pct = int(round(forecast.confidence * 100))
    fig.add_trace(go.Scatter(x=cone_x, y=[c[1] for c in cone], mode="lines", line={"width": 0},
                             hoverinfo="skip", showlegend=False, name="low"))
    fig.add_trace(go.Scatter(
        x=cone_x, y=[c[2] for c in cone], mode="lines", line={"width": 0}, fill="tonexty",
        fillcolor="rgba(99,102,241,0.15)", name=f"{pct}% band",
        hovertemplate="up to %{y:$,.2f}<extra>" + f"{pct}% band</extra>",
    ))
    fig.add_trace(go.Scatter(
        x=cone_x, y=[c[0] for c in cone], mode="lines", line={"color": "#6366f1", "dash": "dash", "width": 2},
        name="Forecast", hovertemplate="%{x|%b %d}: %{y:$,.2f}<extra>forecast</extra>",
    ))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="lines", line={"color": "#111827", "width": 2.5}, name="Spent",
        hovertemplate="%{x|%b %d %H:%M}: %{y:$,.2f}<extra>spent</extra>",
    ))
    if budget > 0:
        fig.add_trace(go.Scatter(
            x=[month_start, month_end], y=[budget, budget], mode="lines",
            line={"color": "#ef4444", "width": 1.5, "dash": "dot"}, name=f"Budget {money(budget)}",
            hovertemplate="budget %{y:$,.2f}<extra></extra>",
        ))
    base_layout(fig, height=300)
    fig.update_xaxes(range=[month_start, month_end], tickformat="%b %d")
    fig.update_layout(hovermode="x unified")
    return fig


def spend_over_time(df: pd.DataFrame, *, interval: str = "day") -> go.Figure:
    """Spend per time bucket stacked by part. Columns: ``bucket`` plus the ``PARTS`` columns."""
    if df.empty:
        return empty_figure()
    fig = go.Figure()
    x = pd.to_datetime(df["bucket"])
    fmt = "%b %d %H:%M" if interval == "hour" else "%b %d, %Y"
    for column, label, color in PARTS:
        fig.add_trace(go.Bar(
            x=x, y=_floats(df[column]), name=label, marker={"color": color, "line": {"width": 0}},
            hovertemplate=f"%{{x|{fmt}}}<br>{label}: %{{y:$,.4f}}<extra></extra>",
        ))
    base_layout(fig)
    fig.update_layout(barmode="stack", bargap=0.15, hovermode="x unified")
    return fig


def spend_by(df: pd.DataFrame, *, label_column: str = "label", max_bars: int = 12) -> go.Figure:
    """Horizontal bars of spend per group, stacked by part, largest on top.

    Columns: ``label_column`` plus the ``PARTS`` columns (a ``cost_total`` column is optional).
    """
    if df.empty:
        return empty_figure()
    frame = df.copy()
    for column, _, _ in PARTS:
        frame[column] = _floats(frame[column])
    frame["_total"] = frame[[c for c, _, _ in PARTS]].sum(axis=1)
    frame = frame.sort_values("_total", ascending=False).head(max_bars).iloc[::-1]
    labels = [str(v) if str(v) else "(none)" for v in frame[label_column]]
    fig = go.Figure()
    for column, label, color in PARTS:
        fig.add_trace(go.Bar(
            y=labels, x=frame[column], name=label, orientation="h", marker={"color": color},
            hovertemplate=f"%{{y}}<br>{label}: %{{x:$,.4f}}<extra></extra>",
        ))
    fig.add_trace(go.Scatter(
        y=labels, x=frame["_total"], mode="text", text=[money(v) for v in frame["_total"]],
        textposition="middle right", showlegend=False, hoverinfo="skip", textfont={"size": 11, "color": AXIS},
    ))
    base_layout(fig, height=max(180, 60 + 28 * len(labels)), money_axis="x")
    top = float(frame["_total"].max()) if len(frame) else 0.0
    fig.update_xaxes(range=[0, top * 1.22 if top > 0 else 1])
    fig.update_layout(barmode="stack", bargap=0.3)
    return fig


def cost_parts_donut(parts: dict[str, float]) -> go.Figure:
    """A donut of spend by part with the reasoning share in the middle. Keys: the ``PARTS`` columns."""
    values = [float(parts.get(column) or 0) for column, _, _ in PARTS]
    total = sum(values)
    if total <= 0:
        return empty_figure()
    fig = go.Figure(go.Pie(
        labels=[label for _, label, _ in PARTS], values=values, hole=0.62, sort=False,
        marker={"colors": [color for _, _, color in PARTS], "line": {"color": "#fff", "width": 2}},
        textinfo="percent", hovertemplate="%{label}: %{value:$,.4f} (%{percent})<extra></extra>",
    ))
    share = values[3] / total
    fig.add_annotation(text=f"<b>{share:.0%}</b><br><span style='font-size:11px'>reasoning</span>",
                       showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 20})
    base_layout(fig, height=280, money_axis=None)
    fig.update_layout(margin={"l": 8, "r": 8, "t": 36, "b": 8})
    return fig


def reasoning_share_by(df: pd.DataFrame, *, label_column: str = "label") -> go.Figure:
    """Reasoning's share of spend per group. Columns: label, ``cost_reasoning``, ``cost_total``."""
    if df.empty:
        return empty_figure()
    frame = df.copy()
    frame["_total"] = _floats(frame["cost_total"])
    frame["_share"] = [r / t if t > 0 else 0.0 for r, t in zip(_floats(frame["cost_reasoning"]), frame["_total"], strict=True)]
    frame = frame[frame["_total"] > 0].sort_values("_share").tail(12)
    labels = [str(v) if str(v) else "(none)" for v in frame[label_column]]
    fig = go.Figure(go.Bar(
        y=labels, x=frame["_share"], orientation="h", marker={"color": "#f59e0b"},
        text=[f"{v:.0%}" for v in frame["_share"]], textposition="outside", cliponaxis=False,
        customdata=frame["_total"], hovertemplate="%{y}: %{x:.1%} of %{customdata:$,.2f}<extra></extra>",
    ))
    base_layout(fig, height=max(180, 60 + 28 * len(labels)), legend=False, money_axis=None)
    fig.update_xaxes(tickformat=".0%", range=[0, 1.12])
    return fig


def top_users(df: pd.DataFrame) -> go.Figure:
    """Spend per user, largest on top. Columns: ``user_id``, ``cost_total``, ``requests``."""
    if df.empty:
        return empty_figure("No per-user spend in this range")
    frame = df.copy()
    frame["_cost"] = _floats(frame["cost_total"])
    frame = frame.sort_values("_cost").tail(15)
    labels = [str(v) if str(v) else "(anonymous)" for v in frame["user_id"]]
    fig = go.Figure(go.Bar(
        y=labels, x=frame["_cost"], orientation="h", marker={"color": "#6366f1"},
        customdata=frame["requests"], text=[money(v) for v in frame["_cost"]], textposition="outside",
        cliponaxis=False, hovertemplate="%{y}: %{x:$,.4f} over %{customdata:,} requests<extra></extra>",
    ))
    base_layout(fig, height=max(180, 60 + 26 * len(labels)), legend=False, money_axis="x")
    top = float(frame["_cost"].max())
    fig.update_xaxes(range=[0, top * 1.25 if top > 0 else 1])
    return fig


def reasoning_distribution(df: pd.DataFrame) -> go.Figure:
    """Reasoning tokens per task class as box plots from quantiles, with a p95 marker each.

    Columns: ``task_class`` and ``p50``, ``p90``, ``p95``, ``p99`` (reasoning tokens);
    optional ``p25``/``p75``/``min``/``max`` tighten the boxes when present.
    """
    if df.empty:
        return empty_figure()
    frame = df.sort_values("p95", ascending=True)
    labels = [str(v) for v in frame["task_class"]]
    p50 = _floats(frame["p50"])
    p90 = _floats(frame["p90"])
    p95 = _floats(frame["p95"])
    p99 = _floats(frame["p99"])
    q1 = _floats(frame["p25"]) if "p25" in frame else [v / 2 for v in p50]
    q3 = _floats(frame["p75"]) if "p75" in frame else [(a + b) / 2 for a, b in zip(p50, p90, strict=True)]
    low = _floats(frame["min"]) if "min" in frame else [0.0] * len(labels)
    high = _floats(frame["max"]) if "max" in frame else p99
    fig = go.Figure()
    fig.add_trace(go.Box(
        y=labels, q1=q1, median=p50, q3=q3, lowerfence=low, upperfence=high, orientation="h",
        name="Reasoning tokens", marker={"color": "#6366f1"}, fillcolor="rgba(99,102,241,0.25)",
        line={"color": "#6366f1"}, hoverinfo="y+x",
    ))
    fig.add_trace(go.Scatter(
        y=labels, x=p95, mode="markers", name="p95 (runaway threshold)",
        marker={"symbol": "line-ns", "size": 22, "line": {"width": 3, "color": "#ef4444"}},
        customdata=list(zip(p50, p90, p99, strict=True)),
        hovertemplate="%{y}<br>p50 %{customdata[0]:,.0f} · p90 %{customdata[1]:,.0f} · "
                      "<b>p95 %{x:,.0f}</b> · p99 %{customdata[2]:,.0f}<extra></extra>",
    ))
    base_layout(fig, height=max(220, 70 + 36 * len(labels)), money_axis=None)
    fig.update_xaxes(title={"text": "reasoning tokens per request", "font": {"size": 11, "color": AXIS}},
                     tickformat=",d", rangemode="tozero")
    return fig


def latency_by_tier(df: pd.DataFrame) -> go.Figure:
    """p50/p95 latency and time to first token per tier, side by side.

    Columns: ``tier``, ``duration_p50``, ``duration_p95``, ``ttft_p50``, ``ttft_p95`` (ms).
    """
    if df.empty:
        return empty_figure()
    frame = df.sort_values("tier")
    tiers = [f"tier {int(t)}" if int(t) else "untiered" for t in frame["tier"]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Latency (ms)", "Time to first token (ms)"),
                        horizontal_spacing=0.1)
    for col, prefix in ((1, "duration"), (2, "ttft")):
        for quantile, color in (("p50", "#6366f1"), ("p95", "#c7d2fe")):
            fig.add_trace(go.Bar(
                x=tiers, y=_floats(frame[f"{prefix}_{quantile}"]), name=quantile, marker={"color": color},
                legendgroup=quantile, showlegend=col == 1,
                hovertemplate=f"%{{x}} {quantile}: %{{y:,.0f}} ms<extra></extra>",
            ), row=1, col=col)
    base_layout(fig, height=300, money_axis=None)
    fig.update_layout(barmode="group", bargap=0.25, margin={"t": 56})
    fig.update_yaxes(tickformat=",d", rangemode="tozero")
    fig.update_annotations(font={"size": 12, "color": AXIS})
    return fig


def escalation_rate(df: pd.DataFrame) -> go.Figure:
    """Share of requests per task type that escalated to a higher tier.

    Columns: ``task_type``, ``requests``, ``escalated``.
    """
    if df.empty:
        return empty_figure()
    frame = df.copy()
    requests = _floats(frame["requests"])
    frame["_rate"] = [e / r if r else 0.0 for e, r in zip(_floats(frame["escalated"]), requests, strict=True)]
    frame = frame.sort_values("_rate")
    labels = [str(v) for v in frame["task_type"]]
    fig = go.Figure(go.Bar(
        y=labels, x=frame["_rate"], orientation="h", marker={"color": "#8b5cf6"},
        text=[f"{v:.1%}" for v in frame["_rate"]], textposition="outside", cliponaxis=False,
        customdata=list(zip(frame["escalated"], frame["requests"], strict=True)),
        hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,} of %{customdata[1]:,})<extra></extra>",
    ))
    base_layout(fig, height=max(180, 60 + 28 * len(labels)), legend=False, money_axis=None)
    top = float(frame["_rate"].max()) if len(frame) else 0.0
    fig.update_xaxes(tickformat=".0%", range=[0, max(top * 1.25, 0.05)])
    return fig


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
    fig = go.Figure()
    max_requests = max(_floats(frame["requests"])) or 1.0
    for i, (task_type, group) in enumerate(frame.groupby("task_type", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        xs = _floats(group["reasoning_tokens"])
        ys = _floats(group["quality"])
        sizes = [8 + 22 * math.sqrt(r / max_requests) for r in _floats(group["requests"])]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", name=str(task_type), legendgroup=str(task_type),
            marker={"color": color, "size": sizes, "opacity": 0.75, "line": {"width": 1, "color": "#fff"}},
            customdata=list(zip(group["budget"], group["requests"], strict=True)),
            hovertemplate=f"<b>{task_type}</b> · %{{customdata[0]}}<br>%{{x:,.0f}} reasoning tokens"
                          "<br>quality %{y:.3f} · %{customdata[1]:,} requests<extra></extra>",
        ))
        front = pareto_frontier(list(zip(xs, ys, strict=True)))
        if len(front) > 1:
            fig.add_trace(go.Scatter(
                x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", line={"color": color, "width": 1.5},
                legendgroup=str(task_type), showlegend=False, hoverinfo="skip", line_shape="hv",
            ))
    base_layout(fig, height=340, money_axis=None)
    fig.update_xaxes(title={"text": "mean reasoning tokens", "font": {"size": 11, "color": AXIS}}, tickformat=",d")
    fig.update_yaxes(title={"text": "mean quality", "font": {"size": 11, "color": AXIS}}, range=[0, 1.05])
    return fig


def budget_vs_used(df: pd.DataFrame) -> go.Figure:
    """Requested thinking budget against reasoning tokens used, per budget.

    Columns: ``thinking_budget`` (tokens requested), ``used_p50``, ``used_p95``, ``requests``.
    The diagonal marks full use of the budget.
    """
    if df.empty:
        return empty_figure("No requests carried a thinking budget in this range")
    frame = df.sort_values("thinking_budget")
    budgets = _floats(frame["thinking_budget"])
    fig = go.Figure()
    top = max(budgets + _floats(frame["used_p95"])) or 1.0
    fig.add_trace(go.Scatter(
        x=[0, top], y=[0, top], mode="lines", line={"color": "#d0d5dd", "dash": "dot"},
        name="budget fully used", hoverinfo="skip",
    ))
    fig.add_trace(go.Scatter(
        x=budgets, y=_floats(frame["used_p95"]), mode="lines+markers", name="p95 used",
        line={"color": "#f59e0b"}, marker={"size": 8},
        hovertemplate="budget %{x:,.0f}: p95 used %{y:,.0f}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=budgets, y=_floats(frame["used_p50"]), mode="lines+markers", name="p50 used",
        line={"color": "#6366f1"}, marker={"size": 8}, customdata=frame["requests"],
        hovertemplate="budget %{x:,.0f}: p50 used %{y:,.0f} (%{customdata:,} requests)<extra></extra>",
    ))
    base_layout(fig, height=320, money_axis=None)
    fig.update_xaxes(title={"text": "requested thinking budget (tokens)", "font": {"size": 11, "color": AXIS}},
                     tickformat=",d", rangemode="tozero")
    fig.update_yaxes(title={"text": "reasoning tokens used", "font": {"size": 11, "color": AXIS}},
                     tickformat=",d", rangemode="tozero")
    return fig


def span_waterfall(df: pd.DataFrame) -> go.Figure:
    """A trace's spans as horizontal bars by start offset and duration, in start order.

    Columns: ``span_id``, ``name``, ``kind`` (llm/tool/agent/chain/other), ``status``,
    ``offset_ms``, ``duration_ms``, ``depth``; optional ``cost_total``, ``reasoning_tokens``.
    Errors are red whatever their kind.
    """
    if df.empty:
        return empty_figure("This trace has no spans")
    frame = df.sort_values(["offset_ms", "depth"]).reset_index(drop=True)
    labels = [f"{'· ' * int(d)}{name}  #{i + 1}" for i, (name, d) in enumerate(zip(frame["name"], frame["depth"], strict=True))]
    colors = [ERROR_COLOR if status == "error" else KIND_COLORS.get(str(kind), KIND_COLORS["other"])
              for kind, status in zip(frame["kind"], frame["status"], strict=True)]
    cost = _floats(frame["cost_total"]) if "cost_total" in frame else [0.0] * len(frame)
    reasoning = _floats(frame["reasoning_tokens"]) if "reasoning_tokens" in frame else [0.0] * len(frame)
    fig = go.Figure(go.Bar(
        y=labels, x=[max(v, 0.5) for v in _floats(frame["duration_ms"])], base=_floats(frame["offset_ms"]),
        orientation="h", marker={"color": colors}, showlegend=False,
        customdata=list(zip(frame["kind"], frame["status"], _floats(frame["duration_ms"]), cost, reasoning,
                            frame["span_id"], strict=True)),
        hovertemplate="<b>%{y}</b><br>%{customdata[0]} · %{customdata[1]}<br>starts at %{base:,.0f} ms, "
                      "lasts %{customdata[2]:,.0f} ms<br>cost $%{customdata[3]:,.6f} · "
                      "%{customdata[4]:,.0f} reasoning tokens<extra></extra>",
    ))
    for kind in sorted({str(k) for k in frame["kind"]}):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=kind,
                                 marker={"color": KIND_COLORS.get(kind, KIND_COLORS["other"]), "symbol": "square"}))
    if (frame["status"] == "error").any():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="error",
                                 marker={"color": ERROR_COLOR, "symbol": "square"}))
    base_layout(fig, height=max(160, 70 + 24 * len(labels)), money_axis=None)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    fig.update_xaxes(title={"text": "ms since trace start", "font": {"size": 11, "color": AXIS}},
                     tickformat=",d", rangemode="tozero")
    fig.update_layout(bargap=0.25)
    return fig
