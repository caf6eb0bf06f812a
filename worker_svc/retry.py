"""Waiting out an outage of api_svc (and its task store) or Kafka instead of dropping the message.

A message whose handling fails because a dependency is down is handled again in place, with
backoff, until it succeeds or the worker stops. Leaving its offset uncommitted and moving on
would deliver it again only after a rebalance, and freeze every later commit of its partition
behind it (the consumer commits the lowest offset still in flight).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from common.kafka import PublishError
from worker_svc.lifecycle_client import LifecycleUnavailable

log = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
UNAVAILABLE = (LifecycleUnavailable, PublishError)


async def until_available(job: Callable[[], Awaitable[None]]) -> None:
    """Runs `job` until it gets through without a dependency being unavailable."""
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            await job()
            return
        except UNAVAILABLE as exc:
            log.error(
                "infrastructure unavailable; retrying the message in place",
                extra={"error": str(exc)[:300], "in_seconds": delay},
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
