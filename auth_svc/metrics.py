"""auth_svc's own Prometheus metrics (the gRPC ones are common.metrics')."""

from __future__ import annotations

from prometheus_client import Counter

# A wrong password or an unknown email (they read the same to the caller; not told apart here
# either, so the metric says nothing an attacker could not see).
LOGIN_FAILURES = Counter("pixelflow_login_failures_total", "Logins refused for incorrect credentials.")
# Logins refused before the password was checked: too many attempts for the account from the address.
LOGIN_THROTTLED = Counter("pixelflow_login_throttled_total", "Logins refused by the per-account-and-address throttle.")
