"""The store's tables (SQLAlchemy Core). A change here needs a migration in `migrations/versions`."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

boards = sa.Table(
    "boards", metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("board", sa.String(128), primary_key=True),
    sa.Column("display_name", sa.Text),
    sa.Column("added_at", UTC_TIME, nullable=False),
    sa.Column("last_snapshot_at", UTC_TIME, comment="source time of the newest applied snapshot"),
    sa.Column("last_synced_at", UTC_TIME),
    sa.Column("status", sa.String(16), nullable=False, server_default="active",
              comment="active | failing | retired | inactive"),
    sa.Column("origin", sa.String(16), comment="seed | cli | discovery | bucket"),
    sa.Column("consecutive_not_found", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status_changed_at", UTC_TIME),
    sa.Column("status_reason", sa.Text),
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("board", sa.String(128), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("company", sa.Text, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("requirements", sa.Text, nullable=False, comment="JSON list"),
    sa.Column("posted_date", sa.String(32)),
    sa.Column("content_hash", sa.BigInteger, nullable=False),
    sa.Column("record_hash", sa.BigInteger,
              comment="digest of the source record the row was last written from (migration 0016); null: none"),
    sa.Column("first_seen_at", UTC_TIME, nullable=False),
    sa.Column("last_seen_at", UTC_TIME, nullable=False,
              comment="refreshed at most once per seen_refresh, so unchanged snapshots write nothing"),
    sa.Column("updated_at", UTC_TIME, nullable=False),
    sa.Column("expired_at", UTC_TIME, comment="null while the posting is listed"),
    sa.Column("expired_reason", sa.String(32),
              comment="absent | board_retired | board_removed | too_old | past_expiry (null while listed)"),
    # what the source stated beyond the core fields (PostingDetails), as stated
    sa.Column("salary_min", sa.Float),
    sa.Column("salary_max", sa.Float),
    sa.Column("salary_currency", sa.String(16)),
    sa.Column("salary_interval", sa.String(32), comment="the source's word: per-year-salary, year, …"),
    sa.Column("salary_text", sa.Text),
    sa.Column("salary_source", sa.String(32),
              comment="where the pay was read: a field (salaryRange, pay_input_ranges, salary_min/max, …), "
                      "content_pay_range, content, additional, description"),
    sa.Column("workplace_type", sa.String(32), comment="a structured field, e.g. Lever workplaceType"),
    sa.Column("region_restrictions", sa.Text, comment="JSON list from a structured field; [] = anywhere"),
    sa.Column("department", sa.Text),
    sa.Column("tags", sa.Text, comment="JSON list"),
    sa.Column("valid_through", UTC_TIME, comment="the source's own expiry of the posting"),
    sa.Column("description_raw", sa.Text, comment="the description exactly as fetched"),
    sa.Column("description_format", sa.String(16), comment="text | html | escaped_html"),
    # derived when the row is written (core.enrich), so an unchanged posting costs nothing
    sa.Column("description_html", sa.Text, comment="sanitized HTML"),
    sa.Column("salary_annual_min", sa.Float, comment="annualized with core.salary's one rule"),
    sa.Column("salary_annual_max", sa.Float),
    sa.Column("salary_period", sa.String(8), comment="hour | day | week | month | year, normalized"),
    sa.Column("salary_period_basis", sa.String(16),
              comment="stated | text | inferred (from the amounts' size): how salary_period was found"),
    sa.Column("workplace", sa.String(16), comment="remote | hybrid | onsite (null: nothing says)"),
    sa.Column("workplace_regions", sa.Text, comment="JSON list"),
    sa.Column("workplace_evidence", sa.String(16), comment="field | location | title: what decided"),
    sa.Column("category", sa.String(32)),
    sa.Column("company_key", sa.String(255), comment="normalized company (core.dedupe)"),
    sa.Column("dedupe_key", sa.Text, comment="company|title|place (core.dedupe: workplace and regions, or the city)"),
    sa.UniqueConstraint("source", "board", "external_id", name="uq_jobs_source_board_external_id"),
    # on PostgreSQL of open jobs only (migration 0019), as are its GIN indexes: an expiry enters none of them
    sa.Index("ix_jobs_dedupe_key", "dedupe_key", postgresql_where=sa.text("expired_at IS NULL")),
    sa.Index("ix_jobs_company_key", "company_key", postgresql_where=sa.text("expired_at IS NULL")),
    # ix_jobs_open_newest (migration 0011): open jobs by posted_date DESC NULLS LAST, id DESC, the order
    # a search reads them in; written in SQL there, as each database spells NULLS LAST differently
    # ix_jobs_board_state (migrations 0017 and 0018, PostgreSQL only): (source, board) INCLUDE the columns
    # an apply reads of each job of its board (its id too), for an index-only scan
)

syncs = sa.Table(
    "syncs", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("board", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="running | success | failed | stale | guarded | retired | partial"),
    sa.Column("found", sa.Integer, nullable=False, default=0),
    sa.Column("new", sa.Integer, nullable=False, default=0),
    sa.Column("changed", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("expired", sa.Integer, nullable=False, default=0),
    sa.Column("reactivated", sa.Integer, nullable=False, default=0),
    sa.Column("already_expired", sa.Integer, nullable=False, server_default="0",
              comment="listed by a feed past their own expiry date: not added"),
    sa.Column("bad", sa.Integer, nullable=False, default=0),
    sa.Column("duplicates", sa.Integer, nullable=False, default=0),
    sa.Column("cross_source_duplicates", sa.Integer, nullable=False, default=0, server_default="0",
              comment="jobs written by this sync that another source lists too (same dedupe key)"),
    sa.Column("possible_duplicates", sa.Integer, nullable=False, default=0, server_default="0",
              comment="pairs recorded in possible_duplicates by this sync"),
    sa.Column("raw_snapshot_id", sa.BigInteger),
    sa.Column("snapshot_at", UTC_TIME),
    sa.Column("started_at", UTC_TIME, nullable=False),
    sa.Column("finished_at", UTC_TIME),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("expiry_guard", sa.String(16),
              comment="refused | empty_held | empty_confirmed | accepted: the guard's decision (null: none needed)"),
    sa.Index("ix_syncs_source_board_started", "source", "board", "started_at"),
    sa.Index("ix_syncs_run_id", "run_id"),
    sa.Index("ix_syncs_source_board_id", "source", "board", "id"),
)

# No foreign keys (migration 0004): the apply writes every event by joining `jobs`, for its own
# `syncs` row, and nothing deletes either; checking each event's keys by trigger cost more than half
# of a large apply's event insert on PostgreSQL.
job_events = sa.Table(
    "job_events", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.BigInteger, nullable=False, comment="jobs.id"),
    sa.Column("sync_id", sa.BigInteger, nullable=False, comment="syncs.id"),
    sa.Column("kind", sa.String(16), nullable=False, comment="new | changed | expired | reactivated"),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Index("ix_job_events_sync", "sync_id"),
    sa.Index("ix_job_events_job", "job_id"),
    sa.Index("ix_job_events_at", "at"),  # migration 0013: a notification window's new jobs
)

raw_snapshots = sa.Table(
    "raw_snapshots", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("board", sa.String(128), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("fetched_at", UTC_TIME, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("last_modified", sa.Text),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_raw_snapshots_source_board", "source", "board", "id"),
)

bad_records = sa.Table(
    "bad_records", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("raw_snapshot_id", sa.BigInteger, sa.ForeignKey("raw_snapshots.id"), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("board", sa.String(128), nullable=False),
    sa.Column("position", sa.Integer, nullable=False, comment="index of the record in the payload"),
    sa.Column("external_id", sa.String(255)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.UniqueConstraint("raw_snapshot_id", "position", name="uq_bad_records_snapshot_position"),
)

potential_companies = sa.Table(
    "potential_companies", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_key", sa.String(255), nullable=False, unique=True, comment="normalized name"),
    sa.Column("origin", sa.String(16), nullable=False, comment="file | cli | postings"),
    sa.Column("added_at", UTC_TIME, nullable=False),
    sa.Column("last_probed_at", UTC_TIME),
    sa.Column("probe_status", sa.String(16), nullable=False, server_default="pending",
              comment="pending | found | not_found | error"),
    sa.Column("probe_result", sa.Text, comment="boards found, or the error"),
)

possible_duplicates = sa.Table(
    "possible_duplicates", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("job_id_a", sa.BigInteger, sa.ForeignKey("jobs.id"), nullable=False, comment="the smaller id"),
    sa.Column("job_id_b", sa.BigInteger, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("syncs.id")),
    sa.Column("found_at", UTC_TIME, nullable=False),
    sa.UniqueConstraint("job_id_a", "job_id_b", name="uq_possible_duplicates_pair"),
)

# Sources in the order their data is preferred for the canonical job: an ATS states the company's own
# posting; an aggregator re-lists it; a live job-site search (JobSpy) scrapes a re-listing.
SOURCE_PREFERENCE = ("greenhouse", "lever", "company_files", "himalayas", "remoteok", "jobspy")

# Each API host's next free request slot, shared by every process of the instance (store/pacing.py).
# Epoch seconds from time.time() as double precision: every process reads the same wall clock, the
# arithmetic is the in-process pacer's (sources/pacing.py), and a float needs no time-zone handling.
# On PostgreSQL it lives in the store (migration 0006; a row lock, never in an apply's way); a SQLite
# store keeps it in a side file instead (`<store>.pacing.db`), because a reservation there would wait
# for an apply's write lock.
host_pacing = sa.Table(
    "host_pacing", metadata,
    sa.Column("host", sa.String(255), primary_key=True, comment='"host", or "host:port" for a non-default port'),
    sa.Column("last_slot_at", sa.Double, nullable=False, comment="the newest slot handed out"),
    sa.Column("next_slot_at", sa.Double, nullable=False,
              comment="the newest slot plus the interval of whoever reserved it"),
    sa.Column("held_until", sa.Double, nullable=False, comment="a Retry-After: no slot before this"),
)

# --- saved searches and the search-run queue (store/searches.py) ---------------------------------
users = sa.Table(
    "users", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True, comment="lower case"),
    sa.Column("name", sa.Text),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="Europe/London", comment="IANA name"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("last_seen_at", UTC_TIME, nullable=False,
              comment="the user's last command or API call; cron searches run for users seen recently"),
    # alerts (migration 0013, store/alerts.py)
    sa.Column("alert_status", sa.String(16), nullable=False, server_default="stopped",
              comment="stopped | unconfirmed | active | paused: unconfirmed and active users get digests"),
    sa.Column("alerts_started_at", UTC_TIME),
    sa.Column("alerts_confirmed_at", UTC_TIME),
    sa.Column("confirm_token_hash", sa.String(64),
              comment="sha256 hex of the one-time confirmation token the first digest carries"),
    sa.Column("digest", sa.String(8), nullable=False, server_default="daily", comment="asap | hourly | daily"),
    sa.Column("digest_hour", sa.Integer, nullable=False, server_default="8", comment="local hour of a daily digest"),
    sa.Column("quiet_hours", sa.String(11), comment="HH:MM-HH:MM local; a digest due then waits for the end"),
)
saved_searches = sa.Table(
    "saved_searches", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False, comment="JSON of core.search.SearchParameters"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("removed_at", UTC_TIME, comment="removed by its user: no new runs; its runs stay readable"),
    sa.Index("ix_saved_searches_user", "user_id"),
)
search_runs = sa.Table(
    "search_runs", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("saved_search_id", sa.BigInteger, sa.ForeignKey("saved_searches.id"), nullable=False),
    sa.Column("source", sa.String(8), nullable=False, comment="manual | cron"),
    sa.Column("status", sa.String(16), nullable=False, comment="pending | running | success | failed | cancelled"),
    sa.Column("parameters", sa.Text, nullable=False, comment="the saved search's parameters when enqueued"),
    sa.Column("client_context", sa.Text, comment="JSON object from the client, at most 4 KB"),
    sa.Column("jobs_found", sa.Integer),
    sa.Column("jobs_found_capped", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="the count stopped at its limit: at least jobs_found"),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dagster_run_id", sa.String(64), comment="the Dagster run executing it, once launched"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("started_at", UTC_TIME),
    sa.Column("completed_at", UTC_TIME),
    sa.Index("ix_search_runs_status", "status", "created_at"),
    sa.Index("ix_search_runs_user", "user_id", "created_at"),
    # one pending run per saved search: a second enqueue returns it instead of piling up
    sa.Index("uq_search_runs_one_pending", "saved_search_id", unique=True,
             sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
)
search_run_results = sa.Table(
    "search_run_results", metadata,
    sa.Column("search_run_id", sa.BigInteger, sa.ForeignKey("search_runs.id"), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True, comment="1 is the best match"),
    sa.Column("job_id", sa.BigInteger, nullable=False, comment="jobs.id of the canonical job"),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False, comment="JSON list: why it matched"),
)
# A user's API tokens (`jobsync users token`): only a SHA-256 of each is kept. A token is 32 random
# bytes, so a fast hash is as safe as a slow one and lets every request be checked by one index lookup.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True, comment="sha256 hex of the token"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("last_used_at", UTC_TIME),
    sa.Column("revoked_at", UTC_TIME),
)

# --- alerts: channels, notifications, deliveries, follow-ups (migration 0013) ----------------------
# A user's notification channels: apprise URLs. `url` holds the user's credentials and is read only to
# send; everything shown or logged is `masked_url`. A removed channel keeps its masked URL only.
channels = sa.Table(
    "channels", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("scheme", sa.String(32), nullable=False, comment="json, mailto, slack, …"),
    sa.Column("url", sa.Text, nullable=False, comment="the apprise URL with its credentials (masked once removed)"),
    sa.Column("masked_url", sa.Text, nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("removed_at", UTC_TIME),
    sa.Index("ix_channels_user", "user_id"),
)
notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("saved_search_id", sa.BigInteger, sa.ForeignKey("saved_searches.id"), nullable=False),
    sa.Column("job_id", sa.BigInteger, nullable=False, comment="jobs.id of the canonical job"),
    sa.Column("batch_key", sa.String(64), nullable=False, comment="the window and user whose digest holds it"),
    sa.Column("status", sa.String(8), nullable=False, comment="pending | sending | sent | failed | skipped"),
    sa.Column("scheduled_for", UTC_TIME, nullable=False, comment="not delivered before this"),
    sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("claim_key", sa.String(36), comment="the delivery pass that holds it while sending"),
    sa.Column("claimed_until", UTC_TIME, comment="a sending claim's lease: past it the claim is void"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("sent_at", UTC_TIME),
    sa.UniqueConstraint("saved_search_id", "job_id", name="uq_notifications_search_job"),
    sa.Index("ix_notifications_due", "status", "scheduled_for"),
    sa.Index("ix_notifications_user", "user_id", "status"),
    sa.Index("ix_notifications_batch", "batch_key"),
)
deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("channel_id", sa.BigInteger, sa.ForeignKey("channels.id"), comment="null: the dev outbox folder"),
    sa.Column("message_key", sa.String(64), nullable=False, comment="the digest (one claim of a user's due notifications)"),
    sa.Column("notifications", sa.Integer, nullable=False, comment="how many notifications the message held"),
    sa.Column("outcome", sa.String(8), nullable=False, comment="sent | failed"),
    sa.Column("error", sa.Text),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Index("ix_deliveries_at", "at"),
)
followups = sa.Table(
    "followups", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="reminder_24h | pause_check_48h"),
    sa.Column("scheduled_at", UTC_TIME, nullable=False),
    sa.Column("status", sa.String(12), nullable=False, comment="pending | processing | processed | skipped"),
    sa.Column("claimed_until", UTC_TIME, comment="a processing claim's lease: past it the row is due again"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("processed_at", UTC_TIME),
    sa.Column("error", sa.Text),
    sa.Index("ix_followups_due", "status", "scheduled_at"),
    # at most one pending follow-up per user and kind
    sa.Index("uq_followups_one_pending", "user_id", "kind", unique=True,
             sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
)

# --- site crawls and sync steps (migration 0014) ---------------------------------------------------
# A crawled site's validated configuration (sources.site_config.SiteConfig); whether it is synced is its
# `boards` row's status (active, or inactive), like every other board's.
sites = sa.Table(
    "sites", metadata,
    sa.Column("name", sa.String(128), primary_key=True, comment="the site_crawl board (partition)"),
    sa.Column("search_url", sa.Text, nullable=False, comment="holds {keyword} and {page}"),
    sa.Column("keywords", sa.Text, nullable=False, comment="JSON list"),
    sa.Column("max_pages", sa.Integer, nullable=False),
    sa.Column("request_delay", sa.Float, nullable=False, comment="seconds between requests to the site"),
    sa.Column("max_jobs", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Float, nullable=False),
    sa.Column("browser", sa.Boolean, nullable=False),
    sa.Column("link_selector", sa.Text),
    sa.Column("language", sa.String(8)),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)
# Each sync's steps, in order: written `pending` when the sync starts, then updated as each runs. Only
# the last N completed syncs of a board keep theirs (the `syncs` rows stay).
sync_steps = sa.Table(
    "sync_steps", metadata,
    sa.Column("sync_id", sa.BigInteger, primary_key=True, comment="syncs.id"),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="pending | running | completed | failed | skipped"),
    sa.Column("done", sa.Integer),
    sa.Column("total", sa.Integer, comment="null: not known ahead"),
    sa.Column("counts", sa.Text, nullable=False, server_default="{}", comment="JSON object of counts"),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UTC_TIME),
    sa.Column("finished_at", UTC_TIME),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

# --- operator alerts (migration 0015) ---------------------------------------------------------------
# One row per alert condition ever raised: while `firing`, an alert was sent at `last_sent_at` (at most
# one an hour); `cleared` once a recovery message went.
ops_alerts = sa.Table(
    "ops_alerts", metadata,
    sa.Column("key", sa.String(255), primary_key=True, comment="the condition, e.g. stale:greenhouse"),
    sa.Column("state", sa.String(8), nullable=False, comment="firing | cleared"),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("first_at", UTC_TIME, nullable=False, comment="when it began firing this time"),
    sa.Column("last_sent_at", UTC_TIME, nullable=False),
    sa.Column("cleared_at", UTC_TIME),
    sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
)
