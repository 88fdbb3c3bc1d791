"""Celery tasks of the core app: housekeeping only (ingest runs in services and commands)."""

from __future__ import annotations

from celery import shared_task

from mdm.services.ingest_volumes import prune_volumes


@shared_task(acks_late=True, ignore_result=True)
def prune_ingest_volumes() -> dict:
    return {"deleted": prune_volumes()}
