"""``score()``: report a verifier's (or a user's) verdict on a trace after the fact.

``POST /api/v1/scores`` with ``{trace_id, span_id, name, value, comment, source}``. A score
named ``quality`` (0 to 1) feeds Thinkmeter's budget recommendations and the simulator;
other names take any finite number. A later score with the same trace, span and name
replaces the earlier one, and the trace need not have been exported yet.
"""

from __future__ import annotations

import math
import re
from typing import Any

from thinkmeter_sdk._log import logger
from thinkmeter_sdk.api_client import ThinkmeterError, request_json
from thinkmeter_sdk.tagging import current_trace_id

HEX_TRACE = re.compile(r"^[0-9a-f]{32}$")
HEX_SPAN = re.compile(r"^[0-9a-f]{16}$")
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _hex_id(value: str | int, digits: int, pattern: re.Pattern[str], what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 16**digits:
            raise ValueError(f"{what} {value} is not a valid OpenTelemetry id")
        return format(value, f"0{digits}x")
    if isinstance(value, str) and pattern.match(value.strip().lower()):
        return value.strip().lower()
    raise ValueError(f"{what} must be {digits} hex digits (or the id as an int), not {value!r}")


def score(*, value: float, trace_id: str | int | None = None, name: str = "quality", span_id: str | int | None = None,
          comment: str = "", source: str = "sdk", timeout: float = 5.0,
          raise_errors: bool = False) -> dict[str, Any] | None:
    """Record a score; returns the stored score, or None when Thinkmeter could not take it.

    ``trace_id`` defaults to the current span's trace. Bad arguments raise ValueError at
    once; failures to reach Thinkmeter are logged and return None, or raise
    :class:`~thinkmeter_sdk.api_client.ThinkmeterError` with ``raise_errors=True``.
    """
    if trace_id is None:
        trace_id = current_trace_id()
        if trace_id is None:
            raise ValueError("score() needs trace_id= outside a span (or call it inside the traced work)")
    body: dict[str, Any] = {"trace_id": _hex_id(trace_id, 32, HEX_TRACE, "trace_id")}
    if span_id is not None:
        body["span_id"] = _hex_id(span_id, 16, HEX_SPAN, "span_id")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"name must be 1 to 64 letters, digits or _ . : -, not {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value!r}")
    if name == "quality" and not 0.0 <= value <= 1.0:
        raise ValueError(f"a quality score is between 0 and 1, not {value!r}")
    body.update(name=name, value=float(value), comment=comment, source=source)
    try:
        answer = request_json("POST", "scores", body=body, timeout=timeout)
    except ThinkmeterError as exc:
        if raise_errors:
            raise
        logger.warning("thinkmeter_sdk: score %s for trace %s was not recorded: %s", name, body["trace_id"], exc)
        return None
    return answer if isinstance(answer, dict) else None
