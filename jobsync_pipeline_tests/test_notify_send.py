"""Sending digests through apprise (notify/send.py) to a real JSON web hook on loopback, and the digest
as a message (notify/render.py). Loopback is private, so every send here is allowed by the allow-list;
nothing reaches beyond 127.0.0.1."""
from __future__ import annotations

import base64
import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import markdown
import pytest
import sqlalchemy as sa

from jobsync_pipeline.defs.notifications import deliver_due
from jobsync_pipeline.defs.resources import NotifyResource
from jobsync_pipeline.notify.render import digest_message
from jobsync_pipeline.notify.send import send
from jobsync_pipeline.store.alerts import ACTIVE
from jobsync_pipeline.store.tables import deliveries
from jobsync_pipeline_tests.test_notifications import LATER, WINDOW, alerting, rows, search
from jobsync_pipeline_tests.test_searches import ANN, CATALOG, T0, catalog, posting

LOOPBACK = "127.0.0.1"
USER, PASSWORD = "hookuser", "S3cretPassw0rd"


class JsonHook:
    """A JSON web hook on 127.0.0.1 (a free port), in a thread: answers every POST with `status` (and
    `location` with a redirect) and keeps what it got as (path, headers, JSON body)."""

    def __init__(self, status: int = 200, location: str | None = None):
        self.status, self.location = status, location
        self.got: list[tuple[str, dict, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                hook.got.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                 json.loads(self.rfile.read(size) or b"null")))
                self.send_response(hook.status)
                if hook.location:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]

    def channel(self, path: str = "/hook") -> str:
        return f"json://{USER}:{PASSWORD}@{LOOPBACK}:{self.port}{path}"

    def __enter__(self) -> JsonHook:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(autouse=True)
def no_allow_list_from_the_environment(monkeypatch):
    monkeypatch.delenv("JOBSYNC_NOTIFY_ALLOW_HOSTS", raising=False)


def test_a_message_the_hook_accepts_is_sent_with_its_title_and_markdown_body():
    body = "## Saved search 1: python\n\n- **[Senior Python Engineer](https://jobs.example/1)** — Acme\n"
    with JsonHook() as hook:
        assert send(hook.channel(), "1 new job for your saved search", body, allow=LOOPBACK) is None
    [(path, headers, payload)] = hook.got
    assert path == "/hook"
    # the Markdown as it is (apprise trims the trailing newline)
    assert (payload["title"], payload["message"]) == ("1 new job for your saved search", body.rstrip("\n"))
    assert headers["authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_a_refused_message_is_a_one_line_error_without_the_credentials():
    with JsonHook(status=500) as hook:
        error = send(hook.channel(), "title", "body", allow=LOOPBACK)
    assert len(hook.got) == 1  # it was tried, once
    assert error and "500" in error
    assert "\n" not in error and len(error) <= 500
    assert PASSWORD not in error


def test_a_loopback_hook_is_refused_without_the_allow_list():
    with JsonHook() as hook:
        error = send(hook.channel(), "title", "body")
        other = send(hook.channel(), "title", "body", allow="10.0.0.0/8")
    assert error == other == ("channel host 127.0.0.1 is a loopback address; set JOBSYNC_NOTIFY_ALLOW_HOSTS "
                              "to allow it")
    assert hook.got == []  # no connection at all


@pytest.mark.parametrize("asked", ["", "?redirects=yes"])
def test_a_redirect_is_not_followed(asked):
    with JsonHook() as elsewhere, JsonHook(status=302) as hook:
        hook.location = f"http://{LOOPBACK}:{elsewhere.port}/internal"
        error = send(hook.channel() + asked, "title", "body", allow=LOOPBACK)
    assert len(hook.got) == 1
    assert elsewhere.got == []  # the redirect's target got nothing
    assert error and "302" in error and PASSWORD not in error


# --- a delivery pass end to end ------------------------------------------------------------------

def notify(**config) -> NotifyResource:
    return NotifyResource(**{"allow_hosts": LOOPBACK, "outbox_folder": "", **config})


def test_deliver_due_sends_each_users_digest_to_the_hook_and_records_it(store_url):
    store = catalog(store_url)  # five jobs, new at T0
    alerting(store, ANN)  # unconfirmed: the digest carries a confirmation token
    search(store, ANN, keywords="python")
    with JsonHook() as hook:
        channel = store.alerts().add_channel(ANN, hook.channel(), allow=LOOPBACK, now=T0)
        store.notifications().build(*WINDOW, now=T0)
        counts = deliver_due(store, notify(), now=LATER)
        assert counts == {"sent": 3, "failed": 0, "skipped": 0, "digests": 1, "void_claims": 0}
        assert deliver_due(store, notify(), now=LATER + timedelta(hours=1))["digests"] == 0  # never twice
    [(_, _, payload)] = hook.got
    assert payload["title"] == "3 new jobs for your saved search"
    for title in ("Senior Python Engineer", "Python Developer", "Data Scientist"):
        assert title in payload["message"]
    assert set(rows(store, "status", "sent_at")) == {("sent", LATER)}
    with store.engine.connect() as conn:
        recorded = [tuple(r) for r in conn.execute(sa.select(
            deliveries.c.channel_id, deliveries.c.notifications, deliveries.c.outcome, deliveries.c.error))]
    assert recorded == [(channel.id, 3, "sent", None)]
    token = re.search(r"--token (jsc_[A-Za-z0-9_-]+)", payload["message"]).group(1)
    assert store.alerts().confirm_token(token).alert_status == ACTIVE


def test_deliver_due_records_a_refused_digest_as_failed_and_due_again_later(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    search(store, ANN, keywords="figma")
    with JsonHook(status=500) as hook:
        store.alerts().add_channel(ANN, hook.channel(), allow=LOOPBACK, now=T0)
        store.notifications().build(*WINDOW, now=T0)
        assert deliver_due(store, notify(), now=LATER)["failed"] == 1
    [(status, retries, due, error)] = rows(store, "status", "retry_count", "scheduled_for", "error")
    assert (status, retries) == ("failed", 1) and due > LATER
    assert "500" in error and PASSWORD not in error
    with store.engine.connect() as conn:
        [(outcome, delivery_error)] = conn.execute(sa.select(deliveries.c.outcome, deliveries.c.error)).all()
    assert outcome == "failed" and PASSWORD not in delivery_error


def test_deliver_due_refuses_a_channel_the_allow_list_no_longer_allows(sqlite_url):
    store = catalog(sqlite_url)
    alerting(store, ANN)
    search(store, ANN, keywords="figma")
    with JsonHook() as hook:
        store.alerts().add_channel(ANN, hook.channel(), allow=LOOPBACK, now=T0)
        store.notifications().build(*WINDOW, now=T0)
        assert deliver_due(store, notify(allow_hosts=""), now=LATER)["failed"] == 1
    assert hook.got == []
    assert "loopback" in rows(store, "error")[0][0]


# --- the digest as a message ---------------------------------------------------------------------

def item(**job) -> dict:
    return {"saved_search_id": 1, "parameters": '{"keywords": "python"}', "title": "Python Engineer",
            "url": "https://jobs.example/1", "company": "Acme", "location": "London", "workplace": None,
            "posted_date": "2026-11-28", "salary_annual_min": None, "salary_annual_max": None,
            "salary_currency": None, "description_html": "", **job}


def links(body: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', markdown.markdown(body))


def test_a_title_cannot_forge_a_link():
    title, body = digest_message([item(title="Engineer](http://evil.example) [Confirm your alerts",
                                       company="[Acme](http://evil.example)")])
    assert title == "1 new job for your saved search"
    # every bracket that could open or close a link is escaped
    assert "](http://evil.example)" not in body.replace("\\]", "")
    assert links(body) == ["https://jobs.example/1"]  # one link: the job's own
    assert "Engineer](http://evil.example) [Confirm your alerts" in markdown.markdown(body)  # shown as text


def test_a_job_url_cannot_forge_a_link_and_only_web_urls_are_links():
    _, body = digest_message([item(url="https://jobs.example/1) [Confirm your alerts](http://evil.example")])
    assert len(links(body)) == 1 and links(body)[0].startswith("https://jobs.example/1%29")
    _, body = digest_message([item(url="javascript:alert(1)")])
    assert links(body) == [] and "javascript" not in body


def test_a_digest_that_reached_no_channel_leaves_the_users_last_token_good(sqlite_url):
    store = catalog(sqlite_url)
    alerting(store, ANN)
    search(store, ANN, keywords="figma")
    search(store, ANN, keywords="python")
    with JsonHook() as hook:
        store.alerts().add_channel(ANN, hook.channel(), allow=LOOPBACK, now=T0)
        store.notifications().build(*WINDOW, now=T0)
        deliver_due(store, notify(per_user=1), now=LATER)  # the first digest, with a token, arrives
    token = re.search(r"--token (jsc_[A-Za-z0-9_-]+)", hook.got[0][2]["message"]).group(1)
    with JsonHook(status=500) as broken:
        store.alerts().add_channel(ANN, broken.channel(), allow=LOOPBACK, now=T0)
        for channel in store.alerts().channels(ANN)[:1]:
            store.alerts().remove_channel(ANN, channel.id)
        assert deliver_due(store, notify(per_user=1), now=LATER)["failed"] == 1  # its new token reached no one
    assert store.alerts().confirm_token(token).alert_status == ACTIVE


def test_a_digest_carries_only_the_sanitized_description_as_text(sqlite_url):
    """What the store keeps of a board's HTML description (script dropped, markup sanitized) reaches the
    digest as plain text: no tag at all; text that only looks like markup stays text once rendered."""
    raw = ('<p>Build <b>great</b> things &amp; more.</p><script>alert("x")</script>'
           '<a href="javascript:alert(1)">click</a><img src=x onerror="alert(2)">')
    looks_like_markup = '<b>Bold</b> claims <img src=x onerror="alert(3)">'
    store = catalog(sqlite_url, [*CATALOG,
                                 posting(9, "Python Wizard", description="Build great things & more.",
                                         description_raw=raw, description_format="html"),
                                 posting(10, "Python Sorcerer", description=looks_like_markup)])
    alerting(store, ANN)
    search(store, ANN, keywords="wizard")
    search(store, ANN, keywords="sorcerer")
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)
    [claim] = queue.claim(LATER)
    _, body = digest_message(claim.items)
    assert len(claim.items) == 2 and "Python Sorcerer" in body
    [line] = [line for line in body.splitlines() if "Build" in line]
    assert line.strip() == "Build great things & more. click"
    assert "alert(\"x\")" not in body and "javascript" not in body and "alert(2)" not in body
    assert not re.search(r"(?<!\\)<[a-z/]", body, re.IGNORECASE)  # no tag but an escaped one
    rendered = markdown.markdown(body)  # as apprise turns Markdown into HTML for e-mail and HTML channels
    assert not re.search(r"<(script|img|b)\b", rendered, re.IGNORECASE)
    assert "Bold" in rendered and "claims" in rendered  # the text itself is kept
    assert set(links(body)) <= {job["url"] for job in claim.items}  # no link but the jobs' own


def test_a_digest_groups_jobs_by_saved_search_and_carries_the_token_only_when_given():
    jobs = [item(), item(saved_search_id=2, parameters='{"locations": ["Berlin"], "remote": true}',
                         title="Data Scientist", url="https://jobs.example/2", salary_annual_min=90000,
                         salary_annual_max=120000, salary_currency="EUR",
                         description_html="<p>" + "word " * 100 + "</p>")]
    title, body = digest_message(jobs, confirm_token="jsc_abc", email=ANN)
    assert title == "2 new jobs for your saved searches"
    assert "## Saved search 1: python" in body and "## Saved search 2: Berlin, remote" in body
    assert "90,000–120,000 EUR a year" in body
    assert re.search(r"(word ){10,}word…", body)  # the excerpt is cut at a word, at most 280 characters
    assert f"`jobsync alerts confirm --token jsc_abc` (or `jobsync alerts confirm --user {ANN}`)" in body
    assert "--token" not in digest_message(jobs)[1]
