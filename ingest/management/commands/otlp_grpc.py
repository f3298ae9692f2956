"""``manage.py otlp_grpc [--host 127.0.0.1] [--port 4317]``: the standalone OTLP/gRPC receiver.

For server mode, where ClickHouse is a server and this receiver can run in its own
process (in embedded mode ``manage.py serve`` already runs it, and a second process
cannot open the chdb directory). Prints the address it listens on, serves until SIGINT
or SIGTERM, then finishes in-flight requests and flushes the span writer.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

DEFAULT_PORT = 4317


class Command(BaseCommand):
    help = "Serve OTLP/gRPC (TraceService/Export) into the same ingest pipeline as POST /v1/traces."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
        parser.add_argument(
            "--port", type=int, default=None,
            help=f"port to listen on; 0 picks a free one (default: THINKMETER_GRPC_PORT, else {DEFAULT_PORT})",
        )
        parser.add_argument("--grace", type=float, default=10.0, help="seconds to finish in-flight requests on stop")

    def handle(self, *args: Any, **options: Any) -> None:
        from ingest.grpc_server import BindError, serve_forever
        from thinkmeter.clickhouse import ClickHouseError, ClickHouseUnavailable, EmbeddedStoreLocked, schema

        port = options["port"] if options["port"] is not None else (settings.OTLP_GRPC_PORT or DEFAULT_PORT)
        # Open the store first: a second embedded process and an unmigrated schema fail here, clearly.
        try:
            pending = schema.pending()
        except EmbeddedStoreLocked as exc:
            self.stderr.write(f"cannot open the embedded ClickHouse store: {exc}")
            sys.exit(2)
        except ClickHouseUnavailable as exc:
            self.stderr.write(f"warning: ClickHouse unavailable ({exc}); answering UNAVAILABLE until it is back")
            pending = []
        except ClickHouseError as exc:
            self.stderr.write(f"cannot read the ClickHouse schema: {exc}")
            sys.exit(2)
        if pending:
            self.stderr.write(f"ClickHouse migrations not applied: {', '.join(pending)}; run `manage.py migrate`.")
            sys.exit(2)

        def announce(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            serve_forever(f"{options['host']}:{port}", announce=announce, grace_s=options["grace"])
        except BindError as exc:
            self.stderr.write(str(exc))
            sys.exit(2)
