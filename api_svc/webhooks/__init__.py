"""Signed webhooks (decision 0018): when a task with a callback URL ends, one Standard Webhooks
event is POSTed to it, retried with backoff for a bounded time, every attempt recorded.

- `accounts`: each user's default callback URL and signing secret (WebhookService);
- `events`: what an event says (its type and JSON body);
- `signing`: secrets and the Standard Webhooks signature;
- `backoff`: when a failed attempt is tried again, and when it is given up;
- `sender`: one POST through the SSRF guard (common.egress), no redirects followed;
- `repository`: the deliveries, their attempt leases and what they read of the tasks;
- `dispatcher`: the loop that turns committed outcomes into deliveries and sends what is due.
"""
