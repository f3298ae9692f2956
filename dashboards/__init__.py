"""Dashboards: analytics queries, Plotly figure builders, pages and the usage/traces REST API."""
