"""The image pool's size follows the memory budget: pure logic."""

from __future__ import annotations

import pytest

from worker_svc.config import WorkerSettings
from worker_svc.imaging.limits import peak_task_bytes

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


def settings(**values: object) -> WorkerSettings:
    return WorkerSettings.model_validate(values)


def test_without_a_budget_the_pool_is_the_concurrency_asked_for() -> None:
    assert settings(worker_concurrency=6).pool_size == 6


def test_a_budget_caps_the_pool_at_what_fits_and_never_below_one() -> None:
    one_task = peak_task_bytes(50_000_000)
    assert 700 * MiB < one_task < 760 * MiB  # 50 MP at the measured 14 bytes a pixel, plus headroom
    assert settings(worker_concurrency=8, worker_memory_budget_bytes=3 * one_task).pool_size == 3
    assert settings(worker_concurrency=2, worker_memory_budget_bytes=10 * one_task).pool_size == 2
    assert settings(worker_concurrency=4, worker_memory_budget_bytes=one_task // 2).pool_size == 1
    # A lower pixel limit lets more tasks share the same budget.
    budget = 2 * 1024 * MiB
    small = settings(worker_concurrency=16, worker_memory_budget_bytes=budget, image_max_pixels=12_000_000)
    assert small.pool_size == budget // peak_task_bytes(12_000_000) == 10
