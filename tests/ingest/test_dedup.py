"""Which stored row carries a provider call's usage (:func:`ingest.dedup.counted_flags`): pure.

A row counts when it has usage, is not a re-sent span identity, is not a provider
response already counted (one call reported by two instrumentations), has no
descendant with usage (a parent holding its calls' totals) and no counted ancestor
with usage (a call arriving after its totals parent was counted). The end-to-end proofs
through ClickHouse and the rollups are in test_idempotency.py and test_otlp_http.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ingest.dedup import Known, counted_flags

T1, T2 = "a" * 32, "b" * 32


@dataclass
class Batch:
    """Spans of one flush, built row by row."""

    trace_ids: list[str] = field(default_factory=list)
    span_ids: list[str] = field(default_factory=list)
    parent_ids: list[str] = field(default_factory=list)
    has_usage: list[bool] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)

    def add(self, span: str, parent: str = "", usage: bool = True, trace: str = T1,
            response: tuple[str, str] = ("", "")) -> Batch:
        self.trace_ids.append(trace)
        self.span_ids.append(span)
        self.parent_ids.append(parent)
        self.has_usage.append(usage)
        self.responses.append(response)
        return self

    def flags(self, stored: list[Known] | None = None, counted: set[tuple[str, str]] | None = None) -> list[int]:
        return counted_flags(self.trace_ids, self.span_ids, self.parent_ids, self.has_usage, self.responses,
                             stored or [], counted or set())


def known(span: str, parent: str = "", usage: bool = True, counted: bool = True, trace: str = T1) -> Known:
    return Known(trace, span, parent, usage, counted)


def test_calls_with_usage_count_and_other_spans_do_not() -> None:
    assert Batch().add("s1").add("s2").add("tool", usage=False).flags() == [1, 1, 0]


def test_an_empty_flush() -> None:
    assert Batch().flags() == []


def test_the_same_span_twice_in_one_flush_counts_once() -> None:
    assert Batch().add("s1").add("s1").flags() == [1, 0]


def test_the_same_span_id_in_another_trace_is_another_span() -> None:
    assert Batch().add("s1", trace=T1).add("s1", trace=T2).flags() == [1, 1]


def test_a_span_already_stored_does_not_count_again() -> None:
    assert Batch().add("s1").add("s2").flags(stored=[known("s1")]) == [0, 1]


def test_a_span_stored_uncounted_is_still_a_duplicate() -> None:
    assert Batch().add("s1").flags(stored=[known("s1", counted=False)]) == [0]


def test_one_provider_response_in_two_traces_counts_once() -> None:
    response = ("openai", "chatcmpl-1")
    flags = Batch().add("s1", trace=T1, response=response).add("s2", trace=T2, response=response).flags()
    assert flags == [1, 0]


def test_a_response_counted_earlier_does_not_count_again() -> None:
    response = ("anthropic", "msg_01")
    assert Batch().add("s9", trace=T2, response=response).flags(counted={response}) == [0]


def test_response_ids_are_per_provider_and_empty_ids_never_match() -> None:
    flags = (Batch().add("s1", response=("openai", "id-1")).add("s2", response=("anthropic", "id-1"))
             .add("s3", response=("openai", "")).add("s4", response=("openai", "")).flags())
    assert flags == [1, 1, 1, 1]


def test_a_response_id_on_a_span_without_usage_does_not_block_the_call() -> None:
    response = ("openai", "chatcmpl-2")
    flags = Batch().add("wrapper", usage=False, response=response).add("call", trace=T2, response=response).flags()
    assert flags == [0, 1]


def test_a_totals_parent_does_not_count_above_its_calls_in_either_order() -> None:
    parent_first = Batch().add("root").add("step1", "root").add("step2", "root").flags()
    parent_last = Batch().add("step1", "root").add("step2", "root").add("root").flags()
    assert parent_first == [0, 1, 1]
    assert parent_last == [1, 1, 0]


def test_usage_further_down_the_tree_also_makes_an_ancestor_a_totals_span() -> None:
    flags = Batch().add("root").add("agent", "root", usage=False).add("call", "agent").flags()
    assert flags == [0, 0, 1]


def test_a_totals_parent_arriving_after_its_stored_calls_does_not_count() -> None:
    stored = [known("step1", "root"), known("step2", "root")]
    assert Batch().add("root").flags(stored=stored) == [0]


def test_a_call_arriving_after_its_counted_totals_parent_adds_nothing() -> None:
    assert Batch().add("step1", "root").flags(stored=[known("root")]) == [0]
    # Also below a stored intermediate span without usage.
    stored = [known("root"), known("agent", "root", usage=False, counted=False)]
    assert Batch().add("call", "agent").flags(stored=stored) == [0]


def test_a_later_call_below_an_uncounted_parent_counts() -> None:
    """Steps of one generateText arriving in separate batches all count; the parent never does."""
    stored = [known("root", counted=False), known("step1", "root")]
    assert Batch().add("step2", "root").flags(stored=stored) == [1]


def test_parent_links_are_per_trace() -> None:
    """A span in another trace with the same span id is not a descendant."""
    flags = Batch().add("root", trace=T1).add("step", "root", trace=T2).flags()
    assert flags == [1, 1]


def test_cyclic_or_very_deep_parent_links_terminate() -> None:
    def run() -> None:
        cyclic = Batch().add("x", "y").add("y", "x").add("self", "self")
        result.append(cyclic.flags())
        deep = Batch()
        for depth in range(600):
            deep.add(f"s{depth}", f"s{depth - 1}" if depth else "")
        result.append(deep.flags())

    result: list[list[int]] = []
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "counted_flags loops on cyclic parent links"
    assert result[0][2] == 1  # a span naming itself as its parent is a root, not its own totals parent
    assert result[1] == [0] * 599 + [1]  # only the deepest call counts
