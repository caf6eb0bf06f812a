"""auth_svc: users, passwords and sessions in PostgreSQL; JWT access tokens."""
