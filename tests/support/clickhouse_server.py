"""Stopping and starting the Debian clickhouse-server that tests/run_tests.sh runs for the suite.

``THINKMETER_TEST_CLICKHOUSE_CTL`` names tests/run_clickhouse_server.sh with its state
directory set; ``server_ctl("stop")`` and ``server_ctl("start")`` restart the server on
the same port (the URL stays valid). Missing outside CI: the test is skipped; in CI it
fails, because a skipped server test in CI is a check that cannot fail.
"""

from __future__ import annotations

import os
import subprocess

import pytest


def server_ctl(action: str) -> None:
    """Run ``$THINKMETER_TEST_CLICKHOUSE_CTL <action>`` (start or stop), waiting until it is done."""
    ctl = os.environ.get("THINKMETER_TEST_CLICKHOUSE_CTL")
    if not ctl:
        message = "THINKMETER_TEST_CLICKHOUSE_CTL is not set: run the suite with `make test`"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run([ctl, action], check=True, timeout=120)
