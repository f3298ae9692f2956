"""The ClickHouse server stopped and started under writes: errors mapped, retried writes land exactly once.

Against Debian's clickhouse-server 18.16 (started by tests/run_tests.sh, restarted here
with ``$THINKMETER_TEST_CLICKHOUSE_CTL stop|start``), through the project's own client
(:func:`thinkmeter.clickhouse.insert` on the native transport):

- a write while the server is down raises ClickHouseUnavailable, tagged;
- the same write retried after the server is back lands once, including on the
  connection that was open before the restart (the transport reconnects once);
- batches written in a loop that retries on ClickHouseUnavailable, as an exporter does
  after a 503, while the server stops and starts under them: every batch once;
- the real OTLP receivers (HTTP and gRPC) with the real span writer answer 503 with
  Retry-After / UNAVAILABLE with RetryInfo when the native transport cannot reach the
  server.

18.16 has no ``{name:Type}`` parameters, DateTime64 or Map, so the span schema cannot
live there; the writes go to a plain MergeTree table with a ``project_id`` column.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pyarrow as pa
import pytest
from django.test import Client, override_settings
from google.rpc import error_details_pb2, status_pb2

from ingest.grpc_server import RETRY_INFO_KEY, start_receiver
from tests.ingest.otlp_builders import OPENAI_USAGE, make_request, post_otlp, span_dict
from tests.support.clickhouse_server import server_ctl
from thinkmeter import clickhouse
from thinkmeter.clickhouse import ClickHouseUnavailable

pytestmark = pytest.mark.server

TABLE = "faults_writes"
ROWS = 1000
PROJECT = 7
DAY = dt.date(2025, 3, 1)


@pytest.fixture
def server(clickhouse_server_url: str) -> Iterator[str]:
    """CLICKHOUSE_URL points at the server for the test; the faults table exists and is empty."""
    with override_settings(CLICKHOUSE_URL=clickhouse_server_url):
        clickhouse.reset_transport()
        try:
            clickhouse.execute(f"DROP TABLE IF EXISTS {TABLE}", tag="tests.faults.ch", system=True)
            clickhouse.execute(
                f"CREATE TABLE {TABLE} (d Date, project_id UInt32, batch UInt32, n UInt32) "
                "ENGINE = MergeTree(d, (project_id, batch, n), 8192)",
                tag="tests.faults.ch", system=True,
            )
            yield clickhouse_server_url
        finally:
            server_ctl("start")  # whatever happened, leave the server running
            try:
                clickhouse.execute(f"DROP TABLE IF EXISTS {TABLE}", tag="tests.faults.ch", system=True)
            finally:
                clickhouse.reset_transport()
    clickhouse.reset_transport()


def batch(number: int) -> pa.Table:
    return pa.table({
        "d": pa.array([DAY] * ROWS, pa.date32()),
        "project_id": pa.array([PROJECT] * ROWS, pa.uint32()),
        "batch": pa.array([number] * ROWS, pa.uint32()),
        "n": pa.array(range(ROWS), pa.uint32()),
    })


def write(number: int) -> int:
    return clickhouse.insert(TABLE, batch(number), tag="tests.faults.write", project=PROJECT)


def stored() -> dict[int, tuple[int, int]]:
    """Per batch: rows stored and distinct n (18.16 has no parameters, so a system-scoped read)."""
    rows = clickhouse.execute(
        f"SELECT batch, count() AS c, uniqExact(n) AS u FROM {TABLE} GROUP BY batch ORDER BY batch",
        tag="tests.faults.count", system=True,
    )
    return {r["batch"]: (r["c"], r["u"]) for r in rows}


def test_a_write_while_down_is_unavailable_and_the_retried_write_lands_once(server: str) -> None:
    assert write(1) == ROWS  # a connection is open before the server goes away
    server_ctl("stop")
    with pytest.raises(ClickHouseUnavailable) as down:
        write(2)
    assert down.value.tag == "tests.faults.write"
    assert "cannot reach" in down.value.message
    server_ctl("start")
    assert write(2) == ROWS  # what the caller does after a 503: send the same batch again
    assert stored() == {1: (ROWS, ROWS), 2: (ROWS, ROWS)}


def test_the_first_write_after_a_restart_reconnects_and_lands_once(server: str) -> None:
    assert write(1) == ROWS
    server_ctl("stop")
    server_ctl("start")
    # The thread's connection died with the old server process: the transport retries
    # once on a fresh connection, and the batch must not land twice.
    assert write(2) == ROWS
    assert stored() == {1: (ROWS, ROWS), 2: (ROWS, ROWS)}


def test_writes_retried_through_a_restart_land_exactly_once(server: str) -> None:
    batches = 40
    failures: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for number in range(batches):
                while True:
                    try:
                        write(number)
                        break
                    except ClickHouseUnavailable:
                        failures.append(number)
                        time.sleep(0.3)  # the receiver's Retry-After, shortened
                time.sleep(0.05)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=writer, name="faults-writer")
    thread.start()
    time.sleep(0.5)
    server_ctl("stop")
    time.sleep(1.5)
    server_ctl("start")
    thread.join(timeout=120)
    assert not thread.is_alive() and errors == []
    assert failures, "no write met the outage"
    assert stored() == {number: (ROWS, ROWS) for number in range(batches)}


@pytest.mark.django_db(transaction=True)  # the gRPC receiver's threads read the key
def test_receivers_answer_retry_later_when_the_server_cannot_be_reached(
    server: str, project: Any, project_key: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The native transport's ClickHouseUnavailable, through the real span writer, to both receivers."""
    request = make_request([span_dict(attributes=dict(OPENAI_USAGE))])
    server_ctl("stop")
    receiver = start_receiver("127.0.0.1:0", workers=2)
    try:
        with caplog.at_level(logging.WARNING, logger="ingest.writer"):
            response = post_otlp(Client(), request.SerializeToString(), project_key)
            with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
                export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                             request_serializer=lambda message: message.SerializeToString(),
                                             response_deserializer=lambda raw: raw)
                with pytest.raises(grpc.RpcError) as rpc:
                    export(request, metadata=[("authorization", f"Bearer {project_key}")], timeout=60)
    finally:
        receiver.server.stop(0).wait()
        server_ctl("start")

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 503 and "storage unavailable" in status.message

    assert rpc.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "storage unavailable" in (rpc.value.details() or "")
    retry = error_details_pb2.RetryInfo.FromString(dict(rpc.value.trailing_metadata() or ())[RETRY_INFO_KEY])
    assert retry.retry_delay.seconds == 2

    # What the writer met was the server being unreachable, not some other statement error.
    failures = [r.getMessage() for r in caplog.records if r.name == "ingest.writer"]
    assert len(failures) == 2 and all("cannot reach" in message for message in failures), failures
