"""Review database: letters, scorer suggestions, append-only decision events, users, batches.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(200)
LABEL = sa.String(100)
VERSION = sa.String(100)
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "letters",
        sa.Column("id", ID, primary_key=True),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("received_at", sa.DateTime, nullable=True),
        sa.Column("channel", sa.String(50), nullable=True),
        sa.Column("petitioner", sa.Text, nullable=True),
        sa.Column("id_number", sa.String(64), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("num_people", sa.Integer, nullable=True),
        # the model version whose suggestions the queue shows (the latest scored)
        sa.Column("model_version", VERSION, nullable=True),
        # review version: bumped by every decision and every re-scoring; posted with each form
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        # pending (no human decision) | partial | done (every applicable head decided)
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        # cache of the latest human label per head (the events table is the truth)
        sa.Column("label_track", LABEL, nullable=True),
        sa.Column("label_route", LABEL, nullable=True),
        sa.Column("label_department", LABEL, nullable=True),
        sa.Column("label_risk", LABEL, nullable=True),
        # what the queue filters on: the human label, else the shown suggestion
        sa.Column("eff_track", LABEL, nullable=True),
        sa.Column("eff_route", LABEL, nullable=True),
        sa.Column("eff_department", LABEL, nullable=True),
        sa.Column("eff_risk", LABEL, nullable=True),
        # the queue's sort key, ascending: -risk rank (高 first), -uncertainty, received (undated last), id
        sa.Column("q_rank", sa.Integer, nullable=False, server_default="0"),
        sa.Column("q_unc", sa.Float, nullable=False, server_default="-1"),
        sa.Column("q_received", sa.DateTime, nullable=False, server_default="9999-12-31 00:00:00"),
        sa.Column("decided_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_letters_status", "letters", ["status"])
    op.create_index("ix_letters_received_at", "letters", ["received_at"])
    op.create_index("ix_letters_queue", "letters", ["q_rank", "q_unc", "q_received", "id"])
    op.create_index("ix_letters_department", "letters", ["eff_department"])

    op.create_table(
        "suggestions",
        sa.Column("letter_id", ID, sa.ForeignKey("letters.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_version", VERSION, primary_key=True),
        sa.Column("batch_id", sa.String(200), nullable=True),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        sa.Column("track", LABEL, nullable=True),
        sa.Column("track_confidence", sa.Float, nullable=True),
        sa.Column("route", LABEL, nullable=True),
        sa.Column("route_guidance", sa.Text, nullable=True),
        sa.Column("department", LABEL, nullable=True),
        sa.Column("department_confidence", sa.Float, nullable=True),
        sa.Column("department_alternatives", sa.Text, nullable=True),
        sa.Column("risk", LABEL, nullable=True),
        sa.Column("risk_score", sa.Float, nullable=True),
        sa.Column("risk_reasons", sa.Text, nullable=True),
        sa.Column("evidence", sa.Text, nullable=True),
        sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("error", sa.Text, nullable=True),
        # sort keys for the queue: 2 = 高 ... 0 = 低; 1 - lowest head confidence
        sa.Column("risk_rank", sa.Integer, nullable=False, server_default="0"),
        sa.Column("uncertainty", sa.Float, nullable=False, server_default="0"),
    )

    op.create_table(
        "events",
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("letter_id", ID, sa.ForeignKey("letters.id"), nullable=False),
        sa.Column("head", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("old_label", LABEL, nullable=True),
        sa.Column("new_label", LABEL, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("model_version", VERSION, nullable=True),
        sa.CheckConstraint("kind in ('accept', 'correct', 'note', 'import')", name="ck_events_kind"),
    )
    op.create_index("ix_events_letter", "events", ["letter_id", "head", "id"])

    op.create_table(
        "users",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("department", LABEL, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.CheckConstraint("role in ('clerk', 'supervisor', 'admin')", name="ck_users_role"),
    )

    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(200), primary_key=True),
        sa.Column("model_version", VERSION, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )

    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=False),
    )

    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )

    # Decisions are append-only: the database itself refuses to change or remove one.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
                "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION triage_events_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'events are append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION triage_events_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS triage_events_append_only()")
    for name in ("settings", "login_failures", "batches", "users", "events", "suggestions", "letters"):
        op.drop_table(name)
