"""The landing page: the projects the signed-in person can read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from thinkmeter.access import readable_projects


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "thinkmeter/home.html", {"projects": readable_projects(request.user)})
