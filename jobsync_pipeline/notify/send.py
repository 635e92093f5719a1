"""Sending a message to a user's channels: through apprise, or to the local outbox folder.

Each send checks the channel again (its host may resolve elsewhere now than when it was added),
follows no redirect, so a channel cannot be bent towards a private address after the fact, and
waits at most 10 s to connect and 30 s for an answer whatever the URL asks. The
error of a failed send is apprise's own warning, masked: a channel's credentials never reach the
store, a log or a run's metadata.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

import apprise

from jobsync_pipeline.notify.channels import ChannelError, mask, parse_channel

CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0  # seconds, at most, whatever a channel URL asks
_URLS = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def send(url: str, title: str, body: str, allow: str = "") -> str | None:
    """Send one message to one apprise URL; None when the service accepted it, else the reason."""
    try:
        parse_channel(url, allow=allow)
    except ChannelError as exc:
        return str(exc)
    asset = apprise.AppriseAsset(http_redirects=False)
    notifier = apprise.Apprise(asset=asset)
    if not notifier.add(url):
        return "apprise could not load the channel"
    for plugin in notifier:
        # also when the URL itself asks otherwise (?redirect=yes, ?cto=600&rto=86400): a user's channel
        # never bends a request elsewhere, nor holds a delivery pass (and its claim's lease) for long
        plugin.redirects = False
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout or CONNECT_TIMEOUT, CONNECT_TIMEOUT)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout or READ_TIMEOUT, READ_TIMEOUT)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        try:
            accepted = notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.MARKDOWN)
        except Exception as exc:  # noqa: BLE001 - a plugin's own failure is this channel's failure
            return _clean(f"{type(exc).__name__}: {exc}")
        log = captured.getvalue()
    if accepted:
        return None
    return _clean(log.strip().splitlines()[-1] if log.strip() else "the service refused the message")


def write_outbox(folder: Path, email: str, key: str, title: str, body: str, now: datetime) -> Path:
    """The dev default channel: the digest as a Markdown file in `folder`, named by time and user."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^a-z0-9._-]+", "_", email.lower())
    path = folder / f"{now:%Y%m%dT%H%M%S}-{safe}-{key[:8]}.md"
    path.write_text(f"# {title}\n\nTo: {email}\n\n{body}", encoding="utf-8")
    return path


def _clean(text: str) -> str:
    """An error as stored: URLs in it masked, one line, at most 500 characters."""
    text = _URLS.sub(lambda m: mask(m.group(0)), " ".join(text.split()))
    return text[:500]
