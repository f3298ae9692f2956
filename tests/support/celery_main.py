"""``python -m tests.support.celery_main worker ...``: the project's Celery worker with broker transport options.

The same app and tasks as ``celery -A thinkmeter worker ...``; the options come as JSON
in ``THINKMETER_TEST_BROKER_TRANSPORT_OPTIONS`` (for example a short
``visibility_timeout``, so a message a killed worker left unacknowledged is delivered
again within seconds instead of the default hour).
"""

from __future__ import annotations

import json
import os
import sys

from thinkmeter.celery import app


def main() -> None:
    options = os.environ.get("THINKMETER_TEST_BROKER_TRANSPORT_OPTIONS")
    if options:
        app.conf.broker_transport_options = json.loads(options)
    app.worker_main(sys.argv[1:])


if __name__ == "__main__":
    main()
