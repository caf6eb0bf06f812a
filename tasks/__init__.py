"""The task domain api_svc and worker_svc share: what a task is (model), its lifecycle (the
exactly-once transitions, lifecycle), the status events that announce them (events), the
operations and their validation (operations), failure codes, source URLs and image types.
auth_svc and the platform (common) know nothing of it.
"""

import common  # noqa: F401  # before gRPC: common sets gRPC's fork handling for every process
