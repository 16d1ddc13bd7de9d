"""The database layer: tables (`schema`), the async engine (`engine`) and Alembic migrations
(`migrate`, scripts in top-level `sql/`). Feature stores import it; it imports config and core."""

from ctid.db.engine import create_engine, display_url, parse_url, session_factory
from ctid.db.migrate import check_schema, current_revision, head_revision, upgrade

__all__ = [
    "check_schema",
    "create_engine",
    "current_revision",
    "display_url",
    "head_revision",
    "parse_url",
    "session_factory",
    "upgrade",
]
