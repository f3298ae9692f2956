"""Embedded mode's task worker and scheduler (no broker)."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings

from thinkmeter import background
from thinkmeter.background import LocalResult
from thinkmeter.celery import app

CALLS: list[dict[str, Any]] = []


@app.task(name="tests.record_thread")
def record_thread(value: int) -> dict[str, Any]:
    record = {"value": value, "thread": threading.get_ident(), "name": threading.current_thread().name}
    CALLS.append(record)
    return record


@app.task(name="tests.fail")
def fail() -> None:
    raise RuntimeError("task failed on purpose")


def test_no_broker_in_embedded_mode() -> None:
    assert not settings.CELERY_BROKER_URL


def test_delay_runs_on_another_thread() -> None:
    caller = threading.get_ident()
    result = record_thread.delay(41)
    assert isinstance(result, LocalResult)
    record = result.get(timeout=10)
    assert result.ready()
    assert record["value"] == 41
    assert record["thread"] != caller
    assert record["name"] == "thinkmeter-tasks"


def test_apply_async_with_countdown_waits() -> None:
    started = time.monotonic()
    result = record_thread.apply_async(args=(7,), countdown=0.5)
    assert result.get(timeout=10)["value"] == 7
    assert time.monotonic() - started >= 0.45


def test_a_failing_task_does_not_kill_the_worker() -> None:
    failed = fail.delay()
    try:
        failed.get(timeout=10)
    except RuntimeError as exc:
        assert "on purpose" in str(exc)
    else:
        raise AssertionError("the task's exception was not raised by get()")
    assert record_thread.delay(5).get(timeout=10)["value"] == 5
    assert background.drain(timeout=10)


def test_scheduler_queues_beat_entries() -> None:
    before = len([c for c in CALLS if c["value"] == 99])
    saved = dict(app.conf.beat_schedule)
    app.conf.beat_schedule = {"tests-every-second": {"task": "tests.record_thread", "schedule": 1.0, "args": (99,)}}
    try:
        scheduler = background.start_scheduler()
    finally:
        app.conf.beat_schedule = saved
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([c for c in CALLS if c["value"] == 99]) < before + 2:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    runs = [c for c in CALLS if c["value"] == 99][before:]
    assert len(runs) >= 2, "the beat entry was not run twice within 10 s"
    assert all(run["name"] == "thinkmeter-tasks" for run in runs)
