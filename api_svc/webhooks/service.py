"""Webhooks in domain terms: a user's settings (default callback URL, signing secret), the
callback URL a new task takes, and the deliveries shown on a task. No gRPC here."""

from __future__ import annotations

from typing import Any

from api_svc.webhooks.repository import WebhookRepository
from api_svc.webhooks.signing import new_secret
from common.errors import FailedPrecondition
from tasks.source_urls import validate_callback_url

Document = dict[str, Any]

# What to do without a signing secret.
SIGN_FIRST = (
    "create a webhook secret first (RotateWebhookSecret: `pixelflow webhooks rotate` or the Webhooks page):"
    " every event is signed with it"
)


class WebhookSettingsService:
    def __init__(self, repository: WebhookRepository) -> None:
        self._repository = repository

    async def settings(self, owner_id: str) -> Document:
        return await self._repository.settings(owner_id) or {"_id": owner_id}

    async def update(self, owner_id: str, default_url: str) -> Document:
        """Sets the default callback URL (the rules of source URLs), or clears it when empty."""
        url = validate_callback_url(default_url, field="default_url") if default_url else None
        if url is not None and not (await self.settings(owner_id)).get("secret"):
            raise FailedPrecondition(SIGN_FIRST)
        return await self._repository.set_default_url(owner_id, url) or {"_id": owner_id}

    async def rotate(self, owner_id: str) -> tuple[str, Document]:
        """A new secret (the only time it is shown) and the settings with it in force."""
        secret = new_secret()
        return secret, await self._repository.set_secret(owner_id, secret) or {"_id": owner_id}

    async def callback_for(self, owner_id: str, requested: str) -> str | None:
        """The callback URL a new task takes: its own (checked like a source URL), else the
        owner's default; None: its end is announced nowhere. One read of the owner's settings."""
        url = validate_callback_url(requested) if requested else None
        settings = await self.settings(owner_id)
        if url is None:
            default = settings.get("default_url")
            return str(default) if default and settings.get("secret") else None
        if not settings.get("secret"):
            raise FailedPrecondition(SIGN_FIRST)
        return url

    async def deliveries(self, task: Document) -> list[Document]:
        """The events of a task's ends (one read, only for a task with a callback URL)."""
        if not task.get("callback_url"):
            return []
        return await self._repository.for_task(task["_id"])
