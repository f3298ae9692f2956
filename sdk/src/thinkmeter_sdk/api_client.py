"""A small JSON client for Thinkmeter's REST API (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from thinkmeter_sdk import _state
from thinkmeter_sdk.settings import Settings, resolve


class ThinkmeterError(RuntimeError):
    """Thinkmeter answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def settings() -> Settings:
    """The settings ``configure()`` resolved, else those of the environment alone."""
    return _state.current.settings or resolve(require_key=False)


def request_json(method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                 timeout: float = 5.0, config: Settings | None = None) -> Any:
    """``method`` ``<api>/<path>`` with the project key; the decoded JSON answer.

    Raises :class:`ThinkmeterError` for HTTP errors (with the server's message) and for
    network failures.
    """
    config = config or settings()
    url = f"{config.api_url}/{path.lstrip('/')}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Accept": "application/json", "User-Agent": f"thinkmeter-sdk/{_state.VERSION}"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - http(s) checked by settings
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:2000].decode("utf-8", "replace")
        raise ThinkmeterError(f"{method} {url}: HTTP {exc.code}: {detail}", exc.code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ThinkmeterError(f"{method} {url}: {exc}") from None
