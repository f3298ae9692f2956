"""Plotly figures of a simulation result (pure: a result dict in, a ``go.Figure`` out).

:func:`cost_quality_figure` draws cost (x) against quality (y): what actually happened,
the simulated policy with its 95% intervals, and for a sweep every point of the curve,
its Pareto frontier and the all-weak / all-strong references.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dashboards.figures import layout

ACTUAL = "#64748b"
SIMULATED = "#6366f1"
CURVE = "#14b8a6"
FRONTIER = "#f59e0b"
REFERENCE = "#94a3b8"


def _error(value: float | None, interval: list[float] | None) -> dict[str, Any] | None:
    if value is None or not interval:
        return None
    return {"type": "data", "symmetric": False, "array": [max(interval[1] - value, 0.0)],
            "arrayminus": [max(value - interval[0], 0.0)], "thickness": 1.2, "width": 4}


def cost_quality_figure(result: dict[str, Any], *, height: int = 420) -> go.Figure:
    """Cost vs quality: actual, simulated (with 95% intervals), and the sweep's curve and Pareto frontier."""
    traces: list[Any] = []
    sweep = result.get("sweep") or {}
    points = [p for p in sweep.get("points", []) if p.get("cost_usd") is not None and p.get("quality") is not None]
    if points:
        name = sweep.get("parameter", "value")
        traces.append(go.Scatter(
            x=[p["cost_usd"] for p in points], y=[p["quality"] for p in points], mode="lines+markers",
            name=f"sweep of {name}", line={"color": CURVE, "width": 1.5}, marker={"size": 7},
            text=[f"{name} = {p['value']:.4g}" + (f"<br>strong share {p['strong_share']:.0%}"
                                                 if p.get("strong_share") is not None else "") for p in points],
            hovertemplate="%{text}<br>cost $%{x:,.2f}<br>quality %{y:.3f}<extra></extra>",
        ))
        order = [i for i in sweep.get("pareto", []) if sweep["points"][i].get("cost_usd") is not None]
        frontier = [sweep["points"][i] for i in order]
        if frontier:
            traces.append(go.Scatter(
                x=[p["cost_usd"] for p in frontier], y=[p["quality"] for p in frontier], mode="lines",
                name="Pareto frontier", line={"color": FRONTIER, "width": 3, "dash": "dot"}, hoverinfo="skip",
            ))
        for key, label in (("weak", "all weak"), ("strong", "all strong")):
            ref = sweep.get(key)
            if ref and ref.get("cost_usd") is not None and ref.get("quality") is not None:
                traces.append(go.Scatter(
                    x=[ref["cost_usd"]], y=[ref["quality"]], mode="markers+text", name=label, text=[label],
                    textposition="bottom center", marker={"color": REFERENCE, "size": 9, "symbol": "square"},
                    hovertemplate=f"{label}<br>cost $%{{x:,.2f}}<br>quality %{{y:.3f}}<extra></extra>",
                ))
    if result.get("actual_cost_usd") is not None and result.get("actual_quality") is not None:
        traces.append(go.Scatter(
            x=[result["actual_cost_usd"]], y=[result["actual_quality"]], mode="markers", name="actual",
            marker={"color": ACTUAL, "size": 14, "symbol": "star"},
            hovertemplate="actual<br>cost $%{x:,.2f}<br>quality %{y:.3f}<extra></extra>",
        ))
    cost, quality = result.get("cost_usd"), result.get("quality")
    if cost is not None and quality is not None:
        ci = result.get("ci95") or {}
        traces.append(go.Scatter(
            x=[cost], y=[quality], mode="markers", name="simulated policy",
            marker={"color": SIMULATED, "size": 13, "symbol": "diamond"},
            error_x=_error(cost, ci.get("cost_usd")), error_y=_error(quality, ci.get("quality")),
            hovertemplate="simulated<br>cost $%{x:,.2f}<br>quality %{y:.3f}<extra></extra>",
        ))
    fig_layout = layout(height=height, money_axis="x", xaxis={"title": {"text": "cost (USD)"}},
                        yaxis={"title": {"text": "quality"}, "rangemode": "normal"})
    if not traces:
        fig_layout["annotations"] = [{"text": "Nothing to plot: cost or quality is unknown", "showarrow": False,
                                      "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return go.Figure(data=traces, layout=fig_layout)
