"""The landing page, and the 404 answer of paths that no route matches.

The sign-in page is Django's ``LoginView`` with the template ``thinkmeter/login.html``;
:mod:`thinkmeter.security` limits failed sign-ins.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from thinkmeter.access import readable_projects

API_PREFIXES = ("/api/", "/v1/")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "thinkmeter/home.html", {"projects": readable_projects(request.user)})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: API clients get JSON (``{"detail": ...}``, as DRF answers), people the HTML page."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception or Exception("not found"))
