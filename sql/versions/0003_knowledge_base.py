"""Knowledge base (articles, their versions, full-text search for Chinese and English), incident
contacts and work notes, the article a first-line resolution cited, and merged duplicates.

Revision ID: 0003
Revises: 0002
Created: 2026-12-05

Search: SQLite gets an FTS5 table with the trigram tokenizer (substring matching that needs no
word segmentation, so Chinese works); PostgreSQL gets the pg_trgm extension and a GIN trigram
index on kb_articles.search_text (serves ILIKE '%term%').
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("symptoms", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("request_type", sa.String(32), nullable=True),
        sa.Column("tags", sa.String(500), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), server_default="published", nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kb_articles"),
    )
    op.create_index("ix_kb_articles_category", "kb_articles", ["category"])

    op.create_table(
        "kb_article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("symptoms", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("request_type", sa.String(32), nullable=True),
        sa.Column("tags", sa.String(500), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kb_article_versions"),
        sa.UniqueConstraint(
            "article_id", "version", name="uq_kb_article_versions_article_id_version"
        ),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name="fk_kb_article_versions_article_id_kb_articles",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "incident_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_contacts"),
        sa.UniqueConstraint(
            "incident_id", "call_id", "kind", name="uq_incident_contacts_incident_id_call_id_kind"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_contacts_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_incident_contacts_incident_id", "incident_contacts", ["incident_id"])
    op.create_index("ix_incident_contacts_call_id", "incident_contacts", ["call_id"])

    op.create_table(
        "incident_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("mail_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incident_notes"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_notes_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_incident_notes_incident_id_at", "incident_notes", ["incident_id", "at"])

    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("kb_article_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_incidents_kb_article_id_kb_articles",
            "kb_articles",
            ["kb_article_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            "fk_incidents_merged_into_id_incidents",
            "incidents",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_incidents_kb_article_id", ["kb_article_id"])

    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # fastupdate off: articles are written a few times a day, so insert speed does not
        # matter, and searches never have to scan (and the planner never shies away from) a GIN
        # pending list of recent articles.
        op.execute(
            "CREATE INDEX ix_kb_articles_search_trgm ON kb_articles "
            "USING gin (search_text gin_trgm_ops) WITH (fastupdate = off)"
        )
    else:
        # Trigram: any 3-character substring is a token, so Chinese needs no word segmenter.
        op.execute(
            "CREATE VIRTUAL TABLE kb_articles_fts USING fts5("
            "title, symptoms, steps, tags, tokenize = 'trigram')"
        )


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_kb_articles_search_trgm")
    else:
        op.execute("DROP TABLE IF EXISTS kb_articles_fts")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_kb_article_id")
        batch.drop_constraint("fk_incidents_merged_into_id_incidents", type_="foreignkey")
        batch.drop_constraint("fk_incidents_kb_article_id_kb_articles", type_="foreignkey")
        batch.drop_column("merged_into_id")
        batch.drop_column("kb_article_id")
    op.drop_table("incident_notes")
    op.drop_table("incident_contacts")
    op.drop_table("kb_article_versions")
    op.drop_table("kb_articles")
