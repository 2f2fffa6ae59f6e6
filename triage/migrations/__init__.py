"""Alembic migrations of the review database, run programmatically by ``triage.store.open_store``."""
