import time, random
from datetime import timedelta, datetime, UTC
import pytest
from ingest import reprice
from thinkmeter import clickhouse
from tests.ingest.test_reprice import random_call, at, override, OLD
from tests.ingest.otlp_builders import post_spans

@pytest.mark.django_db
def test_timing(ch, client, project, project_key):
    today = datetime.now(UTC).date()
    rng = random.Random(1)
    override(project, "acme-reasoner", (today - timedelta(days=30), None, OLD))
    for d in range(4):
        t = time.perf_counter()
        post_spans(client, project_key, [random_call(rng, "acme-reasoner", at(today - timedelta(days=d+1), h)) for h in range(10)])
        print("post", round(time.perf_counter() - t, 3))
    orig = clickhouse.execute
    times = []
    def timed(sql, *a, **k):
        t = time.perf_counter(); r = orig(sql, *a, **k); times.append((round(time.perf_counter()-t, 3), sql.split()[0:3])); return r
    reprice.clickhouse.execute = timed
    try:
        t = time.perf_counter()
        reprice.reprice(project.pk, today - timedelta(days=3), today)
        print("total", time.perf_counter() - t)
    finally:
        reprice.clickhouse.execute = orig
    print(times)
