"""What the SDK waits out: UNAVAILABLE (the gateway has no healthy upstream, a service is
restarting, the connection dropped) is retried with jittered exponential backoff for a bounded
time; every other status is the answer."""

from __future__ import annotations

import logging

import grpc
from tenacity import AsyncRetrying, before_sleep_log, retry_if_exception, stop_after_delay, wait_random_exponential

from pixelflow_client.errors import PixelFlowError

log = logging.getLogger(__name__)


def _transient(error: BaseException) -> bool:
    return isinstance(error, PixelFlowError) and error.code == grpc.StatusCode.UNAVAILABLE


def retrying(seconds: float) -> AsyncRetrying:
    """Attempts until one succeeds or fails otherwise, or `seconds` have passed (then the last
    UNAVAILABLE is raised). 0 makes one attempt."""
    return AsyncRetrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_delay(seconds),
        wait=wait_random_exponential(multiplier=0.1, max=2.0),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
