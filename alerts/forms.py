"""Forms of the alert pages: a rule (params and filters as JSON) and a channel."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings

from alerts import channels
from alerts.models import AlertRule, Channel
from alerts.params import DEFAULTS, QUOTA_SUBJECTS, ParamError, parse_filters, parse_params
from thinkmeter.models import Project

PARAM_HINTS = {kind: json.dumps({k: v for k, v in values.items() if v is not None}) for kind, values in DEFAULTS.items()}
PARAM_HINTS["quota"] = json.dumps({"metric": "reasoning_tokens", "per": "user", "limit": 200000, "warn_at": 0.8,
                                   "fire_at": 1.0}) + f" — per: {' | '.join(QUOTA_SUBJECTS)} (api_key: the sending key)"


def _json(text: str, field: str) -> Any:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{field}: not valid JSON ({exc.msg} at character {exc.pos})") from exc


class RuleForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=AlertRule.Kind.choices)
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="JSON; defaults fill what you leave out")
    filters = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text='JSON, e.g. {"task_type": "summarize", "tier": [2, 3]}')
    channels = forms.ModelMultipleChoiceField(queryset=Channel.objects.none(), required=False,
                                              widget=forms.CheckboxSelectMultiple)
    enabled = forms.BooleanField(required=False, initial=True)
    cooldown_minutes = forms.IntegerField(min_value=0, max_value=7 * 24 * 60, initial=60)
    group_seconds = forms.IntegerField(min_value=0, max_value=24 * 3600, initial=60)

    def __init__(self, *args: Any, projects: list[Project], rule: AlertRule | None = None, **kwargs: Any) -> None:
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "project": rule.project, "name": rule.name, "kind": rule.kind, "params": json.dumps(rule.params),
                "filters": json.dumps(rule.filters), "channels": list(rule.channels.all()), "enabled": rule.enabled,
                "cooldown_minutes": rule.cooldown_minutes, "group_seconds": rule.group_seconds,
            }
        super().__init__(*args, **kwargs)
        ids = [p.pk for p in projects]
        self.fields["project"].queryset = Project.objects.filter(pk__in=ids).order_by("slug")  # type: ignore[attr-defined]
        self.fields["channels"].queryset = Channel.objects.filter(project_id__in=ids)  # type: ignore[attr-defined]
        self.rule = rule
        if rule is not None:
            self.fields["project"].disabled = True
            self.fields["kind"].disabled = True

    def _parse_json(self, data: dict[str, Any], name: str, parse: Callable[[Any], dict[str, Any]]) -> None:
        """Replace ``data[name]`` (JSON text) with what ``parse`` makes of it, or record why it cannot."""
        try:
            data[name] = parse(_json(data.get(name, ""), name))
        except ParamError as exc:
            self.add_error(name, "; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
        except forms.ValidationError as exc:
            self.add_error(name, exc)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, project = data.get("kind"), data.get("project")
        if kind:
            self._parse_json(data, "params", lambda value: parse_params(kind, value))
        self._parse_json(data, "filters", parse_filters)
        if project is not None:
            wrong = [c.name for c in data.get("channels", []) if c.project_id != project.pk]
            if wrong:
                self.add_error("channels", f"not channels of project {project.slug}: {', '.join(wrong)}")
        return data


class ChannelForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="A secret: shown masked once saved.",
                         widget=forms.URLInput(attrs={"autocomplete": "off",
                                                      "placeholder": "https://hooks.slack.com/…"}))

    class Meta:
        model = Channel
        fields = ["project", "kind", "name", "url"]

    def __init__(self, *args: Any, projects: list[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.filter(pk__in=[p.pk for p in projects]).order_by("slug")  # type: ignore[attr-defined]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            channels.check_url_shape(url, settings.WEBHOOK_ALLOW_HOSTS)
        except channels.UnsafeDestination as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url
