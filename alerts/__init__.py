"""Alerts: rules, evaluation, events, notification channels and delivery."""
