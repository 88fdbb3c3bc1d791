"""Reactions to `mdm` signals: in embedded mode, webhooks are dispatched after each commit."""

from __future__ import annotations

import logging

from django.conf import settings

from api import webhooks

logger = logging.getLogger(__name__)

IN_PROCESS_DELIVERIES = 100  # at most this many delivery attempts after one commit


def dispatch_in_process(sender, **kwargs) -> None:
    """Connected to `mdm.signals.events_committed`. With KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT
    (embedded mode: no broker, no beat) the new events are dispatched and what is due is
    delivered here, after the commit, so `make demo` delivers. A failure here never fails the
    change that committed: the delivery rows stay, and the next commit (or beat) goes on."""
    if not settings.KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT:
        return
    try:
        webhooks.dispatch_new_events()
        for delivery_id in webhooks.due_deliveries(limit=IN_PROCESS_DELIVERIES):
            webhooks.deliver(delivery_id)
    except Exception:
        logger.exception("in-process webhook dispatch failed; the next commit tries again")
