"""Load the shipped price catalog (``catalog/default_prices.json``) into the database.

Idempotent: models are matched by name (global entries only; project overrides are
never touched) and rates by their start date, so price ids stay stable across updates.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog" / "default_prices.json"


def read(path: Path = DEFAULT_CATALOG) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ValueError(f"{path}: expected an object with a 'models' list")
    return data


def _dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def load(data: dict[str, Any], model_price: Any = None, price_rate: Any = None) -> tuple[int, int]:
    """Create or update every catalog entry; return (models, rates) written.

    ``model_price``/``price_rate`` let a data migration pass its historical models.
    """
    if model_price is None or price_rate is None:
        from ingest.models import ModelPrice, PriceRate

        model_price, price_rate = ModelPrice, PriceRate
    models_written = rates_written = 0
    for position, item in enumerate(data["models"]):
        entry, _ = model_price.objects.update_or_create(
            project=None,
            model=item["model"],
            defaults={
                "provider": item["provider"],
                "pattern": item["pattern"],
                "tier": int(item.get("tier") or 2),
                "reasoning": bool(item.get("reasoning")),
                "source": item.get("source", ""),
                "note": item.get("note", ""),
                "position": (position + 1) * 10,
            },
        )
        models_written += 1
        for rate in item["prices"]:
            price_rate.objects.update_or_create(
                model_price=entry,
                effective_from=rate["effective_from"],
                defaults={
                    "effective_to": rate.get("effective_to"),
                    "input": _dec(rate["input"]),
                    "output": _dec(rate["output"]),
                    "cache_read": _dec(rate.get("cache_read")),
                    "cache_write": _dec(rate.get("cache_write")),
                    "reasoning": _dec(rate.get("reasoning")),
                },
            )
            rates_written += 1
    from ingest.catalog import invalidate

    invalidate()  # price ids may have changed: no process may keep pricing with the old snapshot
    return models_written, rates_written
