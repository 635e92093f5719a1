"""A local web hook standing in for users' channels, and due notifications seeded in bulk: shared by
the concurrent-deliverers test and `benchmarks/notifications.py`."""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlalchemy as sa

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.tables import channels, jobs, notifications, saved_searches, users

JOB_URL = "https://example.org/jobs/{}"
_JOB_LINK = re.compile(r"\]\(https://example\.org/jobs/(\d+)\)")


class Hook:
    """A web hook on loopback taking apprise's JSON posts. `answer(body)` gives each post's HTTP status
    (200 by default); for each accepted digest it keeps the job numbers its message links to."""

    def __init__(self, answer: Callable[[bytes], int] | None = None):
        self.answer = answer or (lambda body: 200)
        self.lock = threading.Lock()
        self.accepted: list[list[int]] = []  # job numbers per accepted digest
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = hook.receive(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def receive(self, body: bytes) -> int:
        with self.lock:
            status = self.answer(body)
            if status >= 300:
                self.refused += 1
            else:
                self.accepted.append([int(n) for n in _JOB_LINK.findall(json.loads(body)["message"])])
            return status

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def seed_due(engine: sa.Engine, channel_url: str, user_count: int, per_user: int, now: datetime) -> dict[int, int]:
    """`user_count` active users with an `asap` digest, one saved search and one channel each, and
    `per_user` notifications due at `now` each, every one for its own job, in bulk; returns job id →
    job number (the number in the job's URL)."""
    parameters = SearchParameters(keywords="engineer").to_json()
    with engine.begin() as conn:
        conn.execute(users.insert(), [
            {"email": f"user{u:05d}@example.org", "created_at": now, "last_seen_at": now, "alert_status": "active",
             "alerts_started_at": now, "alerts_confirmed_at": now, "digest": "asap"} for u in range(user_count)])
        user_ids = dict(conn.execute(sa.select(users.c.email, users.c.id)).all())
        ordered = [user_ids[f"user{u:05d}@example.org"] for u in range(user_count)]
        conn.execute(saved_searches.insert(), [{"user_id": uid, "parameters": parameters, "created_at": now}
                                               for uid in ordered])
        search_of = dict(conn.execute(sa.select(saved_searches.c.user_id, saved_searches.c.id)).all())
        conn.execute(channels.insert(), [{"user_id": uid, "scheme": "json", "url": channel_url,
                                          "masked_url": channel_url, "created_at": now} for uid in ordered])
        conn.execute(jobs.insert(), [
            {"source": "greenhouse", "board": "acme", "external_id": str(k), "title": f"Software Engineer {k}",
             "company": f"Company {k % 97}", "location": "London, UK", "url": JOB_URL.format(k),
             "description": "Python and SQL.", "requirements": "[]", "posted_date": "2026-11-30",
             "content_hash": k, "first_seen_at": now, "last_seen_at": now, "updated_at": now}
            for k in range(user_count * per_user)])
        number_of = {job_id: int(external) for job_id, external in conn.execute(sa.select(jobs.c.id, jobs.c.external_id))}
        job_id_of = {number: job_id for job_id, number in number_of.items()}
        conn.execute(notifications.insert(), [
            {"user_id": uid, "saved_search_id": search_of[uid], "job_id": job_id_of[u * per_user + i],
             "batch_key": f"seeded/u{uid}", "status": "pending", "scheduled_for": now, "created_at": now}
            for u, uid in enumerate(ordered) for i in range(per_user)])
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    return number_of
