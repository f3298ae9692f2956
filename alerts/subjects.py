"""Names and links of quota subjects, for alert titles and evidence.

A quota rule counts usage per user, per session or per API key (:mod:`alerts.quota`).
Users and sessions are named by their ids; an API key is named by its name and visible
prefix (``backend (tm_AbCdEfG…)``) — never its secret, which is not stored anyway — with
its id, name, prefix and whether it is revoked in the evidence. A key that was deleted
since it sent the spans is named by its id. Each subject links to the project's traces
of that day (narrowed to the user for user quotas: the trace explorer filters by user,
not by session or key).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from urllib.parse import urlencode

from alerts.quota import Subject
from thinkmeter.models import ApiKey, Project


def traces_url(base: str, project: Project, day: date, user: str = "") -> str:
    """The trace explorer on ``day`` (UTC) for ``project``, narrowed to ``user`` when given."""
    query = {"project": project.slug, "range": "custom", "from": day.isoformat(), "to": day.isoformat()}
    if user:
        query["user"] = user
    return f"{base}/traces/?{urlencode(query)}"


def api_key_label(key: ApiKey) -> str:
    return f"{key.name} ({key.prefix}…)"


def describe(project: Project, per: str, subjects: Iterable[str], day: date, base: str) -> dict[str, Subject]:
    """{subject: how to name and link it} for the subjects of a ``per`` quota of ``project`` on ``day``."""
    wanted = [s for s in subjects if s]
    if per != "api_key":
        return {s: Subject(s, traces_url(base, project, day, s if per == "user" else "")) for s in wanted}
    ids = {s: int(s) for s in wanted if s.isdigit()}
    keys = {k.pk: k for k in ApiKey.objects.filter(project=project, pk__in=set(ids.values()))}
    described = {}
    for subject, key_id in ids.items():
        key = keys.get(key_id)
        if key is None:
            described[subject] = Subject(f"#{key_id} (deleted)", traces_url(base, project, day),
                                         {"api_key": {"id": key_id, "deleted": True}})
            continue
        described[subject] = Subject(
            api_key_label(key), traces_url(base, project, day),
            {"api_key": {"id": key.pk, "name": key.name, "prefix": key.prefix, "revoked": not key.active}},
        )
    return described
