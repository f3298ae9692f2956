"""Which model each tier stands for, and its catalog price, handed to the pure engine as plain numbers.

A tier means the project's configured model for it (``Project.tier_models``, e.g.
``{"1": "gpt-4.1-mini", "3": "o3"}``), else the model used most at that tier in the
window. Its rates come from the pricing catalog (:mod:`ingest.catalog`: project
overrides first, effective-dated) as of the window's last day.
"""

from __future__ import annotations

from datetime import date

from ingest.catalog import catalog
from simulator.engine.counterfactual import TierPrice

TIERS = (1, 2, 3)


def tier_prices(project_id: int, tier_models: dict[str, str] | None, used: dict[int, list[tuple[str, int]]],
                day: date) -> tuple[dict[int, TierPrice | None], list[str]]:
    """(tier → price or None, notes): the model for each tier and its rates on ``day``."""
    prices: dict[int, TierPrice | None] = {}
    notes: list[str] = []
    configured = {str(k): str(v) for k, v in (tier_models or {}).items() if v}
    for tier in TIERS:
        model = configured.get(str(tier))
        if model is None and used.get(tier):
            model = used[tier][0][0]
        if model is None:
            prices[tier] = None
            continue
        entry = catalog.match(project_id, model)
        rates = entry.rates_on(day) if entry is not None else None
        if rates is None:
            notes.append(f"tier {tier} stands for {model}, which has no price in the catalog on {day.isoformat()}")
            prices[tier] = None
            continue
        prices[tier] = TierPrice(
            model=model, input=float(rates.input), output=float(rates.output),
            cache_read=None if rates.cache_read is None else float(rates.cache_read),
            cache_write=None if rates.cache_write is None else float(rates.cache_write),
            reasoning=None if rates.reasoning is None else float(rates.reasoning),
        )
    return prices, notes
