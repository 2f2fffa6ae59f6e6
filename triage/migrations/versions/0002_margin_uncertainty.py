"""Stored uncertainty on the queue's current measure: margin of the least certain head.

Rows scored before the queue switched to margin uncertainty still carry the old least
confidence (``1 - p_top1``) in ``suggestions.uncertainty`` and ``letters.q_unc``; recompute
both from each row's stored confidences and alternatives.  Decisions and events untouched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from triage.store import recompute_uncertainty

    recompute_uncertainty(op.get_bind())


def downgrade() -> None:
    """Nothing to undo: the old values were a different measure of the same stored data."""
