"""A Slack-like webhook receiver on 127.0.0.1 for the tests (stdlib HTTP server in a thread).

It answers from a script — e.g. 500, then 429 with Retry-After: 1, then 200, or 200
after a delay — records every request (headers, body, time; ``aborted`` when the client
went away during the delay, so nothing was delivered), and checks Slack bodies against
the Block Kit rules an incoming webhook enforces (fallback text, known block types,
header length, button URLs), so a payload Slack would reject fails the test.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BLOCK_TYPES = {"header", "section", "actions", "context", "divider"}


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int = 0
    aborted: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def block_kit_problems(payload: Any) -> list[str]:
    """What Slack would reject in an incoming-webhook body (empty list: valid)."""
    problems = []
    if not isinstance(payload, dict):
        return ["body is not a JSON object"]
    if not isinstance(payload.get("text"), str) or not payload["text"].strip():
        problems.append("no fallback text")
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        return [*problems, "blocks must be a list of 1-50 blocks"]
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            problems.append(f"block {i}: unknown type {kind!r}")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                problems.append(f"block {i}: header needs plain_text of 1-150 characters")
        if kind == "section":
            text = block.get("text", {})
            if text.get("type") not in ("mrkdwn", "plain_text") or not 0 < len(text.get("text", "")) <= 3000:
                problems.append(f"block {i}: section text must be 1-3000 characters")
        if kind == "actions":
            for element in block.get("elements", []):
                if element.get("type") != "button" or element.get("text", {}).get("type") != "plain_text":
                    problems.append(f"block {i}: actions must be buttons with plain_text")
                url = element.get("url", "")
                if not str(url).startswith(("http://", "https://")) or len(url) > 3000:
                    problems.append(f"block {i}: button url {url!r} is not a URL")
        if kind == "context" and not block.get("elements"):
            problems.append(f"block {i}: context needs elements")
    return problems


def wait_while_connected(connection: socket.socket, seconds: float) -> bool:
    """Hold the answer for ``seconds``; False as soon as the client closes its end (then nothing is sent)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], min(left, 0.05))
        if readable:
            try:
                if connection.recv(1, socket.MSG_PEEK) == b"":
                    return False
            except OSError:
                return False
    return True


class Receiver:
    def __init__(self, script: Sequence[Answer] = (), validate_slack: bool = False) -> None:
        self.script: list[Answer] = list(script)
        self.default = Answer()
        self.validate_slack = validate_slack
        self.requests: list[Received] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver._lock:
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.requests.append(item)
                    if receiver.validate_slack:
                        try:
                            found = block_kit_problems(json.loads(body))
                        except ValueError:
                            found = ["body is not JSON"]
                        receiver.problems.extend(found)
                        if found:
                            answer = Answer(400, body=b"invalid_blocks")
                if answer.delay and not wait_while_connected(self.connection, answer.delay):
                    item.aborted = True  # the client went away (timed out, or was killed): nothing was delivered
                    return
                item.answered = answer.status
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.02)
        return False
