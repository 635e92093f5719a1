"""Source details, derived fields (salary, workplace, category, sanitized HTML), cross-source dedupe.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

JOB_COLUMNS = (
    ("salary_min", sa.Float), ("salary_max", sa.Float), ("salary_currency", sa.String(16)),
    ("salary_interval", sa.String(32)), ("salary_text", sa.Text), ("workplace_type", sa.String(32)),
    ("region_restrictions", sa.Text), ("department", sa.Text), ("tags", sa.Text), ("valid_through", UTC_TIME),
    ("description_raw", sa.Text), ("description_format", sa.String(16)), ("description_html", sa.Text),
    ("salary_annual_min", sa.Float), ("salary_annual_max", sa.Float), ("salary_period", sa.String(8)),
    ("workplace", sa.String(16)), ("workplace_regions", sa.Text), ("workplace_evidence", sa.String(16)),
    ("category", sa.String(32)), ("company_key", sa.String(255)), ("dedupe_key", sa.Text),
)

# One row per job as searches and counts should see it: the postings of all sources that share a
# dedupe key are one job; its data comes from the preferred source (an ATS before an aggregator),
# and `listings` says how many sources list it (their links: the jobs rows with that dedupe key).
CANONICAL_JOBS = """
CREATE VIEW canonical_jobs AS
SELECT * FROM (
    SELECT jobs.*,
           ROW_NUMBER() OVER (PARTITION BY COALESCE(dedupe_key, source || ':' || board || ':' || external_id)
                              ORDER BY CASE source WHEN 'greenhouse' THEN 0 WHEN 'lever' THEN 1
                                       WHEN 'company_files' THEN 2 WHEN 'himalayas' THEN 3
                                       WHEN 'remoteok' THEN 4 ELSE 5 END, first_seen_at, id) AS listing_rank,
           COUNT(*) OVER (PARTITION BY COALESCE(dedupe_key, source || ':' || board || ':' || external_id))
               AS listings
    FROM jobs
    WHERE expired_at IS NULL
) ranked
WHERE listing_rank = 1
"""


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        for name, type_ in JOB_COLUMNS:
            jobs.add_column(sa.Column(name, type_))
        jobs.create_index("ix_jobs_dedupe_key", ["dedupe_key"])
        jobs.create_index("ix_jobs_company_key", ["company_key"])
    with op.batch_alter_table("syncs") as syncs:
        syncs.add_column(sa.Column("cross_source_duplicates", sa.Integer, nullable=False, server_default="0"))
        syncs.add_column(sa.Column("possible_duplicates", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "possible_duplicates",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("job_id_a", sa.BigInteger, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("job_id_b", sa.BigInteger, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("syncs.id")),
        sa.Column("found_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("job_id_a", "job_id_b", name="uq_possible_duplicates_pair"),
    )
    op.execute(CANONICAL_JOBS)


def downgrade() -> None:
    op.execute("DROP VIEW canonical_jobs")
    op.drop_table("possible_duplicates")
    with op.batch_alter_table("syncs") as syncs:
        syncs.drop_column("possible_duplicates")
        syncs.drop_column("cross_source_duplicates")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_index("ix_jobs_company_key")
        jobs.drop_index("ix_jobs_dedupe_key")
        for name, _ in reversed(JOB_COLUMNS):
            jobs.drop_column(name)
