"""Celery task of the simulator: ``simulator.run`` executes a saved :class:`SimulationRun` (thin)."""

from __future__ import annotations

from celery import Task
from django.db import connections

from thinkmeter.celery import app


@app.task(bind=True, name="simulator.run", acks_late=True, ignore_result=True)
def run_simulation_task(self: Task, run_id: int) -> str:
    from simulator import services

    try:
        return services.execute_run(run_id)
    finally:
        if self.request.called_directly:  # the in-process worker: a long-lived thread
            connections.close_all()
