"""The Kafka topics PixelFlow needs, in one place for tests, ``make run`` and CI."""

from collections.abc import Mapping
from dataclasses import dataclass, field

HOUR_MS = 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count and topic-level configuration."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int = 1  # single-broker development cluster


def project_topics(
    *,
    tasks: str = "image-tasks",
    status: str = "task-status",
    dlq: str = "image-tasks-dlq",
    heartbeats: str = "worker-heartbeats",
) -> tuple[TopicSpec, ...]:
    """PixelFlow's topics; callers may rename them (e.g. a prefix per test run)."""
    return (
        # Partitions bound worker parallelism per consumer group; 6 leaves room to scale out.
        TopicSpec(tasks, 6),
        TopicSpec(status, 6),
        # Failed tasks are rare and read by people, so ordering across one partition is simpler.
        TopicSpec(dlq, 1),
        # Heartbeats are only interesting while fresh: plain deletion after an hour keeps the
        # topic small without the surprises of compaction (which keeps a key's last beat forever).
        TopicSpec(heartbeats, 1, {"cleanup.policy": "delete", "retention.ms": str(HOUR_MS)}),
    )


PROJECT_TOPICS: tuple[TopicSpec, ...] = project_topics()
