"""gateway: Envoy configuration generated for the local stack (and, later, for compose)."""
