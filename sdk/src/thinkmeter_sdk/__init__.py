"""thinkmeter-sdk: send an LLM app's calls to Thinkmeter, tagged by task type and tier.

Two lines::

    import thinkmeter_sdk
    thinkmeter_sdk.configure(endpoint="http://127.0.0.1:8000", api_key="tm_..."); thinkmeter_sdk.instrument()

Then tag work with ``with thinkmeter_sdk.context(task_type="code_review", tier=2):``, size
thinking budgets with ``thinkmeter_sdk.budget_for("code_review", default=4096)`` and report
verdicts with ``thinkmeter_sdk.score(trace_id=..., value=0.9)``.
"""

from thinkmeter_sdk._state import VERSION
from thinkmeter_sdk.api_client import ThinkmeterError
from thinkmeter_sdk.budgets import budget_for
from thinkmeter_sdk.classifier import Classification, classify
from thinkmeter_sdk.configuration import configure, force_flush, shutdown
from thinkmeter_sdk.instrumentation import instrument, instrumented, uninstrument
from thinkmeter_sdk.scores import score
from thinkmeter_sdk.settings import ConfigurationError, Settings
from thinkmeter_sdk.tagging import (
    ContextSpanProcessor,
    ContextThreadPoolExecutor,
    context,
    current_attributes,
    current_trace_id,
    propagate,
)

__all__ = [
    "Classification",
    "ConfigurationError",
    "ContextSpanProcessor",
    "ContextThreadPoolExecutor",
    "Settings",
    "ThinkmeterError",
    "__version__",
    "budget_for",
    "classify",
    "configure",
    "context",
    "current_attributes",
    "current_trace_id",
    "force_flush",
    "instrument",
    "instrumented",
    "propagate",
    "score",
    "shutdown",
    "uninstrument",
]

__version__ = VERSION
