"""The only code of auth_svc that talks to PostgreSQL."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Update, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from auth_svc.models import LoginAttempts, RefreshToken, Session, User
from common.errors import AlreadyExists

# Every transaction of auth_svc is bounded in time by the server itself: no statement runs longer
# than this and no transaction idles longer than this between statements. The longest
# transaction (a refresh that finds a reused token: 8 statements) therefore ends within
# 8 × (5 + 5) = 80 s, which is what lets the revocation feed re-read a fixed window and never
# miss a revocation that commits late (AuthService.revocations).
STATEMENT_TIMEOUT_SECONDS = 5
IDLE_IN_TRANSACTION_SECONDS = 5
LONGEST_TRANSACTION_STATEMENTS = 8
LONGEST_TRANSACTION_SECONDS = LONGEST_TRANSACTION_STATEMENTS * (STATEMENT_TIMEOUT_SECONDS + IDLE_IN_TRANSACTION_SECONDS)


def open_engine(url: str) -> AsyncEngine:
    settings = {
        "statement_timeout": str(STATEMENT_TIMEOUT_SECONDS * 1000),
        "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_SECONDS * 1000),
    }
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args={"server_settings": settings}
    )


class RotationOutcome(enum.Enum):
    ROTATED = "rotated"
    INVALID = "invalid"  # unknown, expired, or its session has ended
    REUSED = "reused"  # already rotated once: the session has been revoked


@dataclass(frozen=True)
class Rotation:
    outcome: RotationOutcome
    user: User | None = None
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RevokedSession:
    session_id: uuid.UUID
    revoked_at: datetime


class AuthRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def now(self) -> datetime:
        """The database's clock, so that every replica agrees on expiry."""
        async with self._sessions() as db:
            return (await db.execute(select(func.now()))).scalar_one()

    async def create_user(self, email: str, display_name: str, password_hash: str) -> User:
        user = User(id=uuid.uuid4(), email=email, display_name=display_name, password_hash=password_hash)
        try:
            async with self._sessions.begin() as db:
                db.add(user)
                await db.flush()
                await db.refresh(user)
        except IntegrityError as exc:
            raise AlreadyExists("an account with this email already exists; log in instead") from exc
        return user

    async def user_by_email(self, email: str) -> User | None:
        async with self._sessions() as db:
            return (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()

    async def set_admin(self, email: str, admin: bool) -> bool:
        """Grants or takes back the admin flag; False if there is no such user."""
        async with self._sessions.begin() as db:
            result = await db.execute(update(User).where(User.email == email).values(is_admin=admin))
        return bool(getattr(result, "rowcount", 0))

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        async with self._sessions() as db:
            return await db.get(User, user_id)

    async def count_login_attempt(self, email: str, client: str, window: timedelta) -> tuple[int, datetime]:
        """Counts one more attempt in the current window of the email from this client,
        atomically (a burst of parallel guesses is counted in full before any password is
        checked)."""
        async with self._sessions.begin() as db:
            row = (await db.execute(_COUNT_ATTEMPT_SQL, {"email": email, "client": client, "window": window})).one()
        return int(row.attempts), row.window_started_at

    async def clear_login_attempts(self, email: str, client: str) -> None:
        async with self._sessions.begin() as db:
            await db.execute(delete(LoginAttempts).where(LoginAttempts.email == email, LoginAttempts.client == client))

    async def create_session(self, user_id: uuid.UUID, token_hash: str, expires_at: datetime) -> uuid.UUID:
        session_id = uuid.uuid4()
        async with self._sessions.begin() as db:
            db.add(Session(id=session_id, user_id=user_id, expires_at=expires_at))
            await db.flush()
            db.add(RefreshToken(token_hash=token_hash, session_id=session_id, expires_at=expires_at))
        return session_id

    async def rotate_refresh_token(
        self, old_hash: str, new_hash: str, new_expires_at: datetime, retry_grace: timedelta
    ) -> Rotation:
        """Uses a refresh token once: ROTATED (a new token of the same session is stored), REUSED
        (used before: the session is revoked), or INVALID. A token used again within
        `retry_grace` of its use is a client retrying a refresh whose answer it lost: it is
        rotated again instead of ending the session."""
        async with self._sessions.begin() as db:
            # The conditional UPDATE is the lock: of two concurrent uses, exactly one matches.
            used = (
                await db.execute(
                    update(RefreshToken)
                    .where(
                        RefreshToken.token_hash == old_hash,
                        RefreshToken.used_at.is_(None),
                        RefreshToken.expires_at > func.now(),
                    )
                    .values(used_at=func.now())
                    .returning(RefreshToken.session_id)
                )
            ).scalar_one_or_none()
            if used is None:
                previous = await db.get(RefreshToken, old_hash)
                if previous is None or previous.used_at is None:
                    return Rotation(RotationOutcome.INVALID)
                now = await db.scalar(select(func.now()))
                if now is None or now - previous.used_at > retry_grace:
                    await db.execute(_revoke(previous.session_id))
                    return Rotation(RotationOutcome.REUSED)
                used = previous.session_id
            session = (
                await db.execute(
                    select(Session).where(
                        Session.id == used, Session.revoked_at.is_(None), Session.expires_at > func.now()
                    )
                )
            ).scalar_one_or_none()
            if session is None:
                return Rotation(RotationOutcome.INVALID)
            db.add(RefreshToken(token_hash=new_hash, session_id=session.id, expires_at=new_expires_at))
            session.expires_at = new_expires_at
            user = await db.get(User, session.user_id)
            return Rotation(RotationOutcome.ROTATED, user=user, session_id=session.id)

    async def session_of_refresh_token(self, token_hash: str) -> uuid.UUID | None:
        async with self._sessions() as db:
            token = await db.get(RefreshToken, token_hash)
            return None if token is None else token.session_id

    async def revoke_session(self, session_id: uuid.UUID) -> None:
        async with self._sessions.begin() as db:
            await db.execute(_revoke(session_id))

    async def is_session_active(self, session_id: uuid.UUID) -> bool:
        async with self._sessions() as db:
            found = await db.execute(
                select(Session.id).where(
                    Session.id == session_id, Session.revoked_at.is_(None), Session.expires_at > func.now()
                )
            )
            return found.scalar_one_or_none() is not None

    async def revoked_since(self, since: datetime) -> list[RevokedSession]:
        async with self._sessions() as db:
            rows = await db.execute(
                select(Session.id, Session.revoked_at).where(Session.revoked_at >= since).order_by(Session.revoked_at)
            )
            return [RevokedSession(session_id=row.id, revoked_at=row.revoked_at) for row in rows]


# A new window starts when the old one is over; otherwise the attempt is added to it.
_COUNT_ATTEMPT_SQL = text(
    """
    INSERT INTO login_attempts (email, client, attempts, window_started_at) VALUES (:email, :client, 1, now())
    ON CONFLICT (email, client) DO UPDATE SET
        attempts = CASE WHEN login_attempts.window_started_at <= now() - CAST(:window AS interval)
                        THEN 1 ELSE login_attempts.attempts + 1 END,
        window_started_at = CASE WHEN login_attempts.window_started_at <= now() - CAST(:window AS interval)
                                 THEN now() ELSE login_attempts.window_started_at END
    RETURNING attempts, window_started_at
    """
)


def _revoke(session_id: uuid.UUID) -> Update:
    return update(Session).where(Session.id == session_id, Session.revoked_at.is_(None)).values(revoked_at=func.now())
