"""The packed in-memory dedup index answers exactly like the spans it was given (pure)."""

from __future__ import annotations

import os

from ingest.dedup import Known
from ingest.recent import RecentIndex

TRACE = "ab" * 16
OTHER = "cd" * 16


def known(index: RecentIndex, trace: str) -> list[Known]:
    return sorted(index.known(1, [trace]), key=lambda k: k.span_id)


def test_spans_come_back_with_their_parents_and_flags() -> None:
    index = RecentIndex()
    index.add(1, [TRACE, TRACE], ["0123456789abcdef", "1111111111111111"], ["", "0123456789abcdef"],
              [False, True], [0, 1], [("", ""), ("openai", "resp-1")])
    assert known(index, TRACE) == [
        Known(TRACE, "0123456789abcdef", "", False, False),
        Known(TRACE, "1111111111111111", "0123456789abcdef", True, True),
    ]
    assert len(index) == 2
    assert index.counted_responses(1, [("openai", "resp-1"), ("openai", "resp-2")]) == {("openai", "resp-1")}
    assert index.counted_responses(2, [("openai", "resp-1")]) == set()  # other project
    assert index.known(2, [TRACE]) == []


def test_ids_that_do_not_pack_are_kept_as_text() -> None:
    index = RecentIndex()
    index.add(1, [OTHER, OTHER], ["ABCDEF0123456789", "2222222222222222"], ["", "not-hex"],
              [True, True], [0, 0], [("", ""), ("", "")])
    assert known(index, OTHER) == [
        Known(OTHER, "2222222222222222", "not-hex", True, False),
        Known(OTHER, "ABCDEF0123456789", "", True, False),  # upper case is not what decode writes
    ]


def test_a_resent_span_is_not_added_twice_and_counted_only_rises() -> None:
    index = RecentIndex()
    args = ([TRACE], ["0123456789abcdef"], [""], [True])
    index.add(1, *args, [0], [("", "")])
    index.add(1, *args, [1], [("", "")])
    index.add(1, *args, [0], [("", "")])
    assert len(index) == 1
    assert known(index, TRACE) == [Known(TRACE, "0123456789abcdef", "", True, True)]


def test_oldest_traces_and_responses_are_evicted_beyond_the_caps() -> None:
    index = RecentIndex(max_spans=100, max_responses=40)
    traces = [os.urandom(16).hex() for _ in range(60)]
    for trace in traces:
        spans = [os.urandom(8).hex() for _ in range(4)]
        index.add(1, [trace] * 4, spans, ["", spans[0], spans[0], spans[0]], [False, True, True, True],
                  [0, 1, 1, 1], [("", "")] + [("openai", os.urandom(6).hex()) for _ in range(3)])
    assert len(index) <= 100
    assert index.known(1, [traces[0]]) == []  # oldest gone
    assert len(index.known(1, [traces[-1]])) == 4  # newest kept
    assert len(index._responses) <= 40


def test_what_was_evicted_is_checked_in_clickhouse_and_what_is_held_is_not() -> None:
    index = RecentIndex(max_spans=10, max_responses=10)
    fresh = "ef" * 16
    assert index.to_check(1, [fresh], [1], [("openai", "r")]) == ([], [])  # nothing stored yet
    traces = [f"{n:032x}" for n in range(30)]
    for n, trace in enumerate(traces):  # one span a trace, start times 1000, 1001, ...
        index.add(1, [trace], [f"{n + 1:016x}"], [""], [True], [1], [("openai", f"resp-{n}")],
                  start_ns=[1000 + n])
    assert len(index) <= 10
    assert index.to_check(1, [traces[0]], [1000], [("", "")])[0] == [traces[0]]  # evicted: ask ClickHouse
    assert index.to_check(1, [traces[15]], [1015], [("", "")])[0] == [traces[15]]
    assert index.to_check(1, [traces[29]], [1029], [("", "")])[0] == []  # held
    assert index.counted_responses(1, [("openai", "resp-0")]) == set()
    assert index.counted_responses(1, [("openai", "resp-29")]) == {("openai", "resp-29")}
    assert index.to_check(1, [traces[29]], [1029], [("openai", "resp-0")])[1] == ["resp-0"]
    index.forget_before(5000)
    assert index.to_check(1, [fresh], [5000], [("", "")])[0] == [fresh]
    assert index.to_check(1, [fresh], [5001], [("", "")])[0] == []
    index.clear()
    assert index.to_check(1, [fresh], [1], [("", "")])[0] == []


def span_args(trace: str, start: int, response: str = "") -> tuple[list[str], list[str], list[str], list[bool],
                                                                    list[int], list[tuple[str, str]], list[int]]:
    return [trace], [os.urandom(8).hex()], [""], [True], [1], [("openai", response)], [start]


def test_only_what_the_index_cannot_vouch_for_goes_to_clickhouse() -> None:
    index = RecentIndex(max_spans=10, max_responses=10)
    traces = [os.urandom(16).hex() for _ in range(30)]
    for n, trace in enumerate(traces):  # start times 1000..1029; the first 20 traces get evicted
        index.add(1, *span_args(trace, 1000 + n, f"resp-{n}"))
    assert index.known(1, [traces[0]]) == []  # evicted
    brand_new = os.urandom(16).hex()
    check_traces, check_responses = index.to_check(
        1, [traces[0], traces[29], brand_new], [1000, 1029, 1005],
        [("openai", "resp-0"), ("openai", "resp-29"), ("openai", "resp-new")])
    # evicted but seen: ask; held: no; never seen, though older than the index's horizon: no
    assert check_traces == [traces[0]]
    assert check_responses == ["resp-0"]


def test_a_trace_seen_again_after_eviction_is_never_trusted_to_the_index_alone() -> None:
    index = RecentIndex(max_spans=2, max_responses=10)
    trace = os.urandom(16).hex()
    index.add(1, *span_args(trace, 1000))
    for n in range(3):  # evict it
        index.add(1, *span_args(os.urandom(16).hex(), 2000 + n))
    assert index.known(1, [trace]) == []
    index.add(1, *span_args(trace, 3000))  # a later span of the same trace comes back into the index
    assert index.to_check(1, [trace], [3000], [("", "")])[0] == [trace]  # the first span is not held here


def test_forget_before_makes_older_spans_unknown_to_the_filters_too() -> None:
    index = RecentIndex()
    index.forget_before(5000)
    new = os.urandom(16).hex()
    assert index.to_check(1, [new], [5000], [("openai", "r")]) == ([new], ["r"])
    assert index.to_check(1, [new], [5001], [("openai", "r")]) == ([], [])
