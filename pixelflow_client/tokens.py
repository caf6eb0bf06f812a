"""Access tokens for a client: a fixed one, or the saved session's, refreshed before it runs out
(and once more when the server says it no longer accepts it) and written back for the next run."""

from __future__ import annotations

import asyncio
import time

import grpc
from pixelflow.v1 import auth_pb2, auth_pb2_grpc

from pixelflow_client.credentials import CredentialStore, SavedSession
from pixelflow_client.errors import NotLoggedIn, PixelFlowError

# An access token this close to its expiry is refreshed first: a call must not carry a token
# that expires while it crosses the gateway and the services.
_EXPIRY_MARGIN_SECONDS = 30.0


class Tokens:
    def __init__(
        self,
        auth: auth_pb2_grpc.AuthServiceAsyncStub,
        *,
        store: CredentialStore | None,
        session: SavedSession | None,
        access_token: str | None,
        timeout: float,
    ) -> None:
        self._auth = auth
        self._store = store
        self._session = session
        self._fixed = access_token
        self._timeout = timeout
        self._lock = asyncio.Lock()

    @property
    def session(self) -> SavedSession | None:
        return self._session

    @property
    def can_refresh(self) -> bool:
        return self._fixed is None and self._session is not None

    async def current(self) -> str:
        if self._fixed is not None:
            return self._fixed
        session = self._session
        if session is None:
            raise NotLoggedIn()
        if session.access_token and session.access_expires_at - _EXPIRY_MARGIN_SECONDS > time.time():
            return session.access_token
        return await self.refresh(stale=session.access_token)

    async def refresh(self, stale: str) -> str:
        """A new access token unless someone (this process or another) already replaced `stale`."""
        async with self._lock:
            if self._store is not None:
                return await self._refresh_under_file_lock(stale)
            return await self._refresh_now(stale)

    def adopt(self, server: str, email: str, response: auth_pb2.LoginResponse | auth_pb2.RefreshResponse) -> None:
        """Takes the tokens of a login (or refresh) and saves them when the client has a store."""
        self._session = SavedSession(
            server=server,
            email=email,
            refresh_token=response.refresh_token,
            access_token=response.access_token,
            access_expires_at=time.time() + response.expires_in,
        )
        self._fixed = None
        if self._store is not None:
            self._store.save(self._session)

    def forget(self) -> None:
        self._session = None
        self._fixed = None
        if self._store is not None:
            self._store.delete()

    async def _refresh_under_file_lock(self, stale: str) -> str:
        assert self._store is not None
        async with self._store.locked():
            saved = self._store.load()
            if saved is None:
                raise NotLoggedIn("the saved session is gone (logged out elsewhere?): run `pixelflow login` again")
            self._session = saved
            fresh_enough = saved.access_expires_at - _EXPIRY_MARGIN_SECONDS > time.time()
            if saved.access_token and saved.access_token != stale and fresh_enough:
                return saved.access_token
            return await self._refresh_call(saved)

    async def _refresh_now(self, stale: str) -> str:
        session = self._session
        if session is None:
            raise NotLoggedIn()
        if session.access_token and session.access_token != stale:
            return session.access_token
        return await self._refresh_call(session)

    async def _refresh_call(self, session: SavedSession) -> str:
        try:
            response: auth_pb2.RefreshResponse = await self._auth.Refresh(
                auth_pb2.RefreshRequest(refresh_token=session.refresh_token), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise NotLoggedIn(
                    f"the saved session has ended ({error.details()}): run `pixelflow login` again"
                ) from None
            raise PixelFlowError.from_rpc(error) from None
        self.adopt(session.server, session.email, response)
        return response.access_token
