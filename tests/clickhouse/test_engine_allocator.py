"""``manage.py serve`` tunes the embedded engine's jemalloc before chdb loads.

Each case runs in a fresh interpreter, because jemalloc reads ``JE_MALLOC_CONF`` once,
when the chdb library is loaded: Django is set up first (as ``serve`` has it), then the
tuning, then chdb, whose ``system.jemalloc_stats`` says which decay time it runs with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import django
django.setup()
from thinkmeter.management.commands.serve import tune_engine_allocator
tune_engine_allocator()
import chdb
stats = str(chdb.query("SELECT * FROM system.jemalloc_stats", "CSV"))
print([line.strip() for line in stats.splitlines() if line.strip().startswith("opt.dirty_decay_ms")][0])
"""


def engine_decay_line(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "DJANGO_SETTINGS_MODULE": "thinkmeter.settings", **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_serve_shortens_the_engine_allocator_decay() -> None:
    assert engine_decay_line().startswith("opt.dirty_decay_ms: 1000")


def test_an_operators_own_setting_wins() -> None:
    assert engine_decay_line(JE_MALLOC_CONF="dirty_decay_ms:2500").startswith("opt.dirty_decay_ms: 2500")
