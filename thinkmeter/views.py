"""The landing page, the sign-in page, and the 404 answer of paths that no route matches.

The sign-in page is Django's ``LoginView`` (CSRF-protected like every form) with the
template ``thinkmeter/login.html``; :mod:`thinkmeter.login_limit` counts failed sign-ins
and, once an address and username are locked out, the page answers 429 with Retry-After.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from thinkmeter import login_limit
from thinkmeter.access import readable_projects

API_PREFIXES = ("/api/", "/v1/")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "thinkmeter/home.html", {"projects": readable_projects(request.user)})


class LoginView(auth_views.LoginView):
    template_name = "thinkmeter/login.html"
    redirect_authenticated_user = False

    def form_invalid(self, form: Any) -> HttpResponse:
        wait = login_limit.locked_for(self.request, str(form.data.get("username", "")))
        if not wait:
            return super().form_invalid(form)
        response = self.render_to_response(self.get_context_data(form=form, locked_minutes=-(-wait // 60)),
                                           status=429)
        response["Retry-After"] = str(wait)
        return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: API clients get JSON (``{"detail": ...}``, as DRF answers), people the HTML page."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception or Exception("not found"))
