"""What auth_svc does, in domain terms: no gRPC here (errors are common.errors)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auth_svc.metrics import LOGIN_FAILURES, LOGIN_THROTTLED
from auth_svc.models import User
from auth_svc.passwords import PasswordHasher
from auth_svc.repository import LONGEST_TRANSACTION_SECONDS, AuthRepository, RevokedSession, RotationOutcome
from auth_svc.tokens import AccessTokenIssuer, hash_refresh_token, new_refresh_token
from auth_svc.validation import normalize_password, validate_display_name, validate_email, validate_password
from common.errors import InvalidArgument, ResourceExhausted, Unauthenticated
from common.tokens import INVALID_TOKEN_MESSAGE, AccessClaims, verify_access_token

log = logging.getLogger(__name__)

LOGIN_FAILED_MESSAGE = "incorrect email or password"
# Longer than any auth_svc transaction can last (repository.LONGEST_TRANSACTION_SECONDS).
REVOCATION_LOOKBACK = timedelta(seconds=LONGEST_TRANSACTION_SECONDS + 40)
REFRESH_FAILED_MESSAGE = "the refresh token is invalid, expired or already used; log in again"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: User


@dataclass(frozen=True)
class Policy:
    refresh_ttl: timedelta
    refresh_retry_grace: timedelta
    login_max_attempts: int
    login_window: timedelta
    issuer: str
    audience: str


class AuthService:
    def __init__(
        self,
        repository: AuthRepository,
        hasher: PasswordHasher,
        issuer: AccessTokenIssuer,
        verification_keys: dict[str, Ed25519PublicKey],
        policy: Policy,
    ) -> None:
        self._repository = repository
        self._hasher = hasher
        self._issuer = issuer
        self.verification_keys = verification_keys
        self.policy = policy

    @property
    def access_token_ttl(self) -> timedelta:
        return self._issuer.ttl

    async def register(self, email: str, password: str, display_name: str) -> User:
        normalized = validate_email(email)
        password = validate_password(normalize_password(password))
        name = validate_display_name(display_name)
        password_hash = await self._hasher.hash(password)
        user = await self._repository.create_user(normalized, name, password_hash)
        log.info("user registered", extra={"user_id": str(user.id)})
        return user

    async def login(self, email: str, password: str, client: str) -> TokenPair:
        """`client` is the caller's address: attempts are counted per account *and* address, so
        guesses from one place lock that place out of the account, never its owner elsewhere
        (the gateway limits how fast any one address may try, across accounts)."""
        if not email.strip() or not password:
            field = "email" if not email.strip() else "password"
            raise InvalidArgument("email and password are required", field=field, rule=f"{field}.required")
        normalized = validate_email(email)
        # Counted before the password is checked, so parallel guesses are throttled too.
        attempts, window_started_at = await self._repository.count_login_attempt(
            normalized, client, self.policy.login_window
        )
        if attempts > self.policy.login_max_attempts:
            retry_at = window_started_at + self.policy.login_window
            wait = max(1, int((retry_at - await self._repository.now()).total_seconds()) + 1)
            LOGIN_THROTTLED.inc()
            raise ResourceExhausted(
                f"too many login attempts for this account from your address; try again in {wait} seconds",
                retry_after_seconds=wait,
            )
        user = await self._repository.user_by_email(normalized)
        # Unknown email or wrong password: same bcrypt cost, same message.
        if not await self._password_matches(password, user) or user is None:
            LOGIN_FAILURES.inc()
            raise Unauthenticated(LOGIN_FAILED_MESSAGE)
        await self._repository.clear_login_attempts(normalized, client)
        refresh_token, refresh_hash = new_refresh_token()
        now = await self._repository.now()
        session_id = await self._repository.create_session(user.id, refresh_hash, now + self.policy.refresh_ttl)
        log.info("user logged in", extra={"user_id": str(user.id), "session_id": str(session_id)})
        return self._pair(user, session_id, refresh_token)

    async def _password_matches(self, password: str, user: User | None) -> bool:
        stored = None if user is None else user.password_hash
        if await self._hasher.verify(normalize_password(password), stored):
            return True
        # Accounts registered before passwords were NFC-normalized hold the hash of the raw form.
        return password != normalize_password(password) and await self._hasher.verify(password, stored)

    async def refresh(self, refresh_token: str) -> TokenPair:
        if not refresh_token:
            raise InvalidArgument("refresh_token is required", field="refresh_token", rule="refresh_token.required")
        new_token, new_hash = new_refresh_token()
        now = await self._repository.now()
        rotation = await self._repository.rotate_refresh_token(
            hash_refresh_token(refresh_token), new_hash, now + self.policy.refresh_ttl, self.policy.refresh_retry_grace
        )
        if rotation.outcome is RotationOutcome.REUSED:
            log.warning("refresh token reused; session revoked")
        if rotation.outcome is not RotationOutcome.ROTATED or rotation.user is None or rotation.session_id is None:
            raise Unauthenticated(REFRESH_FAILED_MESSAGE)
        return self._pair(rotation.user, rotation.session_id, new_token)

    async def logout(self, refresh_token: str, access_token: str | None) -> None:
        if refresh_token:
            session_id = await self._repository.session_of_refresh_token(hash_refresh_token(refresh_token))
            if session_id is None:
                raise Unauthenticated(REFRESH_FAILED_MESSAGE)
        elif access_token:
            session_id = uuid.UUID(self._verify(access_token).session_id)
        else:
            raise Unauthenticated("log out needs a refresh_token or an access token in the authorization header")
        await self._repository.revoke_session(session_id)
        log.info("session ended", extra={"session_id": str(session_id)})

    async def validate(self, access_token: str | None) -> AccessClaims:
        if not access_token:
            raise Unauthenticated("an access token is required: send 'authorization: Bearer <token>'")
        claims = self._verify(access_token)
        if not await self._repository.is_session_active(uuid.UUID(claims.session_id)):
            raise Unauthenticated(INVALID_TOKEN_MESSAGE)
        return claims

    async def me(self, access_token: str | None) -> User:
        claims = await self.validate(access_token)
        user = await self._repository.user_by_id(uuid.UUID(claims.user_id))
        if user is None:
            raise Unauthenticated(INVALID_TOKEN_MESSAGE)
        return user

    async def revocations(self, since: datetime | None) -> tuple[list[RevokedSession], datetime]:
        """Sessions revoked since `since` (and REVOCATION_LOOKBACK before it), never older than
        an access token can live.

        `revoked_at` is the revoking transaction's start time, so a revocation that commits
        after a poll can carry a time before that poll's `as_of`; a sequence number would have
        the same gap (it is taken when the row is written, not when it commits). Re-reading the
        last REVOCATION_LOOKBACK closes it: the database ends any transaction of ours before
        that (statement and idle-in-transaction timeouts, auth_svc.repository), so none can
        commit a revocation older than the window. The pollers keep a set, so reading one twice
        costs nothing."""
        now = await self._repository.now()
        oldest_relevant = now - self._issuer.ttl
        # Compared before subtracting: a `since` near year 1 must not overflow (the fuzzer's 500).
        recent = since is not None and since > oldest_relevant + REVOCATION_LOOKBACK
        start = since - REVOCATION_LOOKBACK if recent and since is not None else oldest_relevant
        return await self._repository.revoked_since(start), now

    def _verify(self, access_token: str) -> AccessClaims:
        return verify_access_token(
            access_token, self.verification_keys, issuer=self.policy.issuer, audience=self.policy.audience
        )

    def _pair(self, user: User, session_id: uuid.UUID, refresh_token: str) -> TokenPair:
        access = self._issuer.issue(user_id=user.id, email=user.email, session_id=session_id, admin=user.is_admin)
        return TokenPair(
            access_token=access.token,
            access_expires_in=int(self._issuer.ttl.total_seconds()),
            refresh_token=refresh_token,
            refresh_expires_in=int(self.policy.refresh_ttl.total_seconds()),
            user=user,
        )
