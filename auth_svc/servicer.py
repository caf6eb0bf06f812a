"""Translates AuthService RPCs to the domain service and back; nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.models import User
from auth_svc.service import AuthService, TokenPair
from common.peers import client_address
from common.tokens import ALGORITHM, b64url, bearer_token, public_key_bytes

Context = grpc.aio.ServicerContext[Any, Any]


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def user_message(user: User) -> auth_pb2.User:
    return auth_pb2.User(
        id=str(user.id), email=user.email, display_name=user.display_name, created_at=_timestamp(user.created_at)
    )


def _token_fields(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.access_expires_in,
        "token_type": "Bearer",
        "user": user_message(pair.user),
        "refresh_expires_in": pair.refresh_expires_in,
    }


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: AuthService) -> None:
        self._service = service

    async def Register(self, request: auth_pb2.RegisterRequest, context: Context) -> auth_pb2.User:
        user = await self._service.register(request.email, request.password, request.display_name)
        return user_message(user)

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.LoginResponse:
        client = client_address(context.invocation_metadata() or (), context.peer())
        return auth_pb2.LoginResponse(
            **_token_fields(await self._service.login(request.email, request.password, client))
        )

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.RefreshResponse:
        return auth_pb2.RefreshResponse(**_token_fields(await self._service.refresh(request.refresh_token)))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:
        await self._service.logout(request.refresh_token, bearer_token(context.invocation_metadata()))
        return auth_pb2.LogoutResponse()

    async def ValidateToken(
        self, request: auth_pb2.ValidateTokenRequest, context: Context
    ) -> auth_pb2.ValidateTokenResponse:
        claims = await self._service.validate(request.token or bearer_token(context.invocation_metadata()))
        return auth_pb2.ValidateTokenResponse(
            user_id=claims.user_id,
            email=claims.email,
            expires_at=_timestamp(claims.expires_at),
            session_id=claims.session_id,
            token_id=claims.token_id,
        )

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: Context) -> auth_pb2.User:
        return user_message(await self._service.me(bearer_token(context.invocation_metadata())))

    async def GetPublicKeys(
        self, request: auth_pb2.GetPublicKeysRequest, context: Context
    ) -> auth_pb2.GetPublicKeysResponse:
        keys = [
            auth_pb2.PublicKey(kid=kid, alg=ALGORITHM, kty="OKP", crv="Ed25519", x=b64url(public_key_bytes(key)))
            for kid, key in self._service.verification_keys.items()
        ]
        policy = self._service.policy
        return auth_pb2.GetPublicKeysResponse(keys=keys, issuer=policy.issuer, audience=policy.audience)

    async def ListRevocations(
        self, request: auth_pb2.ListRevocationsRequest, context: Context
    ) -> auth_pb2.ListRevocationsResponse:
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        revoked, as_of = await self._service.revocations(since)
        ttl = self._service.access_token_ttl
        return auth_pb2.ListRevocationsResponse(
            revocations=[
                auth_pb2.Revocation(
                    session_id=str(item.session_id),
                    revoked_at=_timestamp(item.revoked_at),
                    expires_at=_timestamp(item.revoked_at + ttl),
                )
                for item in revoked
            ],
            as_of=_timestamp(as_of),
        )
