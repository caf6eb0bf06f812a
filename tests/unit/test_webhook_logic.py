"""Webhooks' pure logic: the backoff schedule, the signature and its payload, the event body,
what an answer means, the callback URL rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from api_svc.webhooks.backoff import RetryPolicy
from api_svc.webhooks.events import event_body
from api_svc.webhooks.sender import Verdict, judge
from api_svc.webhooks.signing import new_secret, secret_hint, signed_headers
from common.errors import InvalidArgument
from tasks.source_urls import validate_callback_url, validate_source_url

pytestmark = pytest.mark.unit

ENDED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- backoff ---------------------------------------------------------------------------------


def test_the_delay_doubles_with_up_to_half_again_as_jitter() -> None:
    policy = RetryPolicy(first_backoff_seconds=5, max_backoff_seconds=3600)
    assert [policy.delay_after(n, rng=lambda: 0.0) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert [policy.delay_after(n, rng=lambda: 0.999) for n in (1, 2)] == pytest.approx([7.4975, 14.995])


def test_gaps_grow_whatever_the_jitter_until_the_cap() -> None:
    policy = RetryPolicy(first_backoff_seconds=0.3, max_backoff_seconds=100)
    for failures in range(1, 8):
        worst_now = policy.delay_after(failures, rng=lambda: 0.9999)
        best_next = policy.delay_after(failures + 1, rng=lambda: 0.0)
        assert best_next > worst_now


def test_the_delay_is_capped() -> None:
    policy = RetryPolicy(first_backoff_seconds=5, max_backoff_seconds=60)
    assert policy.delay_after(30, rng=lambda: 0.0) == 60
    assert policy.delay_after(30, rng=lambda: 0.5) == 75  # the jitter still spreads capped retries


def test_a_retry_past_the_period_gives_up() -> None:
    policy = RetryPolicy(first_backoff_seconds=5, max_backoff_seconds=3600, retry_seconds=60)
    assert policy.next_attempt(ENDED, ENDED + timedelta(seconds=10), 1, rng=lambda: 0.0) == ENDED + timedelta(
        seconds=15
    )
    assert policy.next_attempt(ENDED, ENDED + timedelta(seconds=51), 2, rng=lambda: 0.0) is None


def test_a_day_of_production_retries() -> None:
    """The defaults: how many attempts a receiver that is down for a day gets, and when."""
    policy = RetryPolicy()
    at, failures, times = ENDED, 0, [ENDED]
    while (following := policy.next_attempt(ENDED, at, failures + 1, rng=lambda: 0.0)) is not None:
        at, failures = following, failures + 1
        times.append(at)
    assert len(times) == 33  # 5 s, 10 s, ... 1 h, then hourly to the end of the day
    assert times[-1] - ENDED <= timedelta(days=1)


# --- signing ---------------------------------------------------------------------------------


def test_secrets_are_standard_webhooks_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert new_secret() != secret
    assert secret_hint(secret) == f"whsec_…{secret[-4:]}"


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    secret = new_secret()
    body = b'{"type":"task.completed"}'
    at = datetime.now(tz=UTC)
    headers = signed_headers(secret, "msg_abc", body, at)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"msg_abc.{int(at.timestamp())}.".encode() + body, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": "v1," + base64.b64encode(expected).decode(),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "task.completed"}
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(body, headers)


# --- the event -------------------------------------------------------------------------------


def test_the_event_body_renders_the_task_as_rest_does() -> None:
    task = {
        "_id": "t" * 32,
        "owner_id": "u1",
        "status": "FAILED",
        "source": {"url": "https://example.com/a.png"},
        "operations": [{"grayscale": {}}],
        "output": {},
        "attempts": 1,
        "created_at": ENDED - timedelta(seconds=3),
        "completed_at": ENDED,
        "error": {"code": "SOURCE_NOT_FOUND", "message": "gone", "retryable": False},
        "callback_url": "https://example.com/hook",
    }
    event = json.loads(event_body(task, "http://gw"))
    assert event["type"] == "task.failed"
    assert event["timestamp"] == "2026-01-02T03:04:05Z"
    assert event["data"]["task"]["id"] == "t" * 32
    assert event["data"]["task"]["status"] == "TASK_STATUS_FAILED"
    assert event["data"]["task"]["error"]["code"] == "SOURCE_NOT_FOUND"
    assert event["data"]["task"]["sourceUrl"] == "https://example.com/a.png"
    assert "webhookDeliveries" not in event["data"]["task"]


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (410, Verdict.GIVE_UP),
        (302, Verdict.RETRY),
        (400, Verdict.RETRY),
        (401, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_what_an_answer_means(status: int, verdict: Verdict) -> None:
    assert judge(status)[0] is verdict


# --- callback URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("", "required"),
        ("ftp://example.com/", "scheme"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/" + "x" * 2100, "max_len"),
        ("https://exa\tmple.com/", "whitespace"),
    ],
)
def test_callback_urls_follow_the_source_url_rules(url: str, rule: str) -> None:
    for check, field in ((validate_callback_url, "callback_url"), (validate_source_url, "source_url")):
        with pytest.raises(InvalidArgument) as caught:
            check(url)
        assert caught.value.violations[0][:1] == (field,)
        assert caught.value.violations[0][2] == f"{field}.{rule}"


def test_the_default_url_is_named_as_its_own_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_callback_url("gopher://example.com/", field="default_url")
    assert caught.value.violations[0][0] == "default_url"
    assert "callback URL" in caught.value.violations[0][1]
    assert validate_callback_url(" https://example.com/hook ") == "https://example.com/hook"
