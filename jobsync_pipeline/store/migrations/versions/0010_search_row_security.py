"""Row-level security on PostgreSQL: a user's saved searches, search runs and their results are
readable and writable by the application role `jobsync_app` only while the transaction names that user
(`SET LOCAL ROLE jobsync_app` and the setting `jobsync.user_id`; store/searches.py does both for every
user-scoped call). With no user named, the role sees nothing. The owner of the tables (the pipeline:
sensors, the executor, migrations) is not subject to the policies (RLS is enabled, not forced).

The role is cluster-wide: made once, kept by every database that uses it; made here when missing, and
granted to the migrating user so that a non-superuser owner can SET ROLE to it. SQLite has no roles:
nothing to do there (the store's own WHERE clauses hold ownership on both).

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLE = "jobsync_app"
CURRENT_USER_ID = "NULLIF(current_setting('jobsync.user_id', true), '')::bigint"
OWNED = {
    "users": f"id = {CURRENT_USER_ID}",
    "saved_searches": f"user_id = {CURRENT_USER_ID}",
    "search_runs": f"user_id = {CURRENT_USER_ID}",
    # search_runs' own policy filters the subquery: results of the user's runs only
    "search_run_results": "search_run_id IN (SELECT id FROM search_runs)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database made it just now
        END $$""")
    op.execute(f"GRANT {ROLE} TO CURRENT_USER")
    op.execute(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ROLE}', current_schema()); END $$")
    op.execute(f"GRANT SELECT ON jobs, users TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON saved_searches, search_runs TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON search_run_results TO {ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE saved_searches_id_seq, search_runs_id_seq TO {ROLE}")
    for table, owned in OWNED.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_owner ON {table} TO {ROLE} USING ({owned}) WITH CHECK ({owned})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in OWNED:
        op.execute(f"DROP POLICY IF EXISTS {table}_owner ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON jobs, users, saved_searches, search_runs, search_run_results FROM {ROLE}")
    op.execute(f"REVOKE ALL ON SEQUENCE saved_searches_id_seq, search_runs_id_seq FROM {ROLE}")
    op.execute(f"DO $$ BEGIN EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {ROLE}', current_schema()); END $$")
