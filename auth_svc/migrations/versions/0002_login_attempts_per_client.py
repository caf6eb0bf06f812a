"""Login attempts counted per account and client address, so that guesses from one address
cannot lock the account's owner out everywhere.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _create(with_client: bool) -> None:
    columns = [sa.Column("email", sa.String(254), primary_key=True)]
    if with_client:
        columns.append(sa.Column("client", sa.String(64), primary_key=True))
    op.create_table(
        "login_attempts",
        *columns,
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_started_at", TZ, nullable=False),
    )


def upgrade() -> None:
    # The counts are minutes-lived; starting them afresh is harmless.
    op.drop_table("login_attempts")
    _create(with_client=True)


def downgrade() -> None:
    op.drop_table("login_attempts")
    _create(with_client=False)
