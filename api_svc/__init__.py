"""api_svc: the task API (TaskService). Tasks live in MongoDB and are queued through Kafka."""
