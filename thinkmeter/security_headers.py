"""Response headers that Django's SecurityMiddleware does not set: Content-Security-Policy and
Permissions-Policy.

Every script, style sheet, font and image the pages use is served by this installation
(plotly.js from ``/assets/``, Swagger UI from drf-spectacular-sidecar, the rest from
``/static/``), and no page has inline script (behaviours are wired from data attributes
by ``thinkmeter/app.js``), so the policy allows scripts from this origin only — no
inline script, no ``eval``. Inline *styles* stay allowed (``style-src 'self'
'unsafe-inline'``): plotly.js adds ``<style>`` elements for its mode bar and hover
labels at run time (without a nonce), and templates size bars and charts with style
attributes; injected CSS cannot run code. ``frame-ancestors 'none'`` repeats
X-Frame-Options for browsers that read only CSP; ``form-action 'self'`` keeps forms
posting here; ``object-src 'none'`` and ``base-uri 'self'`` close the usual bypasses.

``settings.CONTENT_SECURITY_POLICY`` overrides the policy (a dict of directive → sources);
an empty dict turns the header off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY: dict[str, Sequence[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Powerful browser features no page uses.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def render_policy(policy: Mapping[str, Sequence[str]]) -> str:
    """``{"default-src": ["'self'"]}`` → ``"default-src 'self'"`` (directives joined by ``; ``)."""
    return "; ".join(f"{directive} {' '.join(sources)}".strip() for directive, sources in policy.items())


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy and Permissions-Policy to every response that lacks them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        self.csp = render_policy(policy) if policy else ""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.csp and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.csp
        if "Permissions-Policy" not in response:
            response["Permissions-Policy"] = PERMISSIONS_POLICY
        return response
