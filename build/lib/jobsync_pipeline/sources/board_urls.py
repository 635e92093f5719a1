"""What a pasted careers URL names: the source and the board token (Greenhouse or Lever)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

_HOSTS = (
    # boards.greenhouse.io/stripe, job-boards.greenhouse.io/stripe/jobs/123, boards.eu.greenhouse.io/x,
    # boards-api.greenhouse.io/v1/boards/stripe/jobs
    (re.compile(r"^(?:job-)?boards(?:\.eu)?\.greenhouse\.io$"), "greenhouse", 0),
    (re.compile(r"^boards-api(?:\.eu)?\.greenhouse\.io$"), "greenhouse", 2),
    # jobs.lever.co/netflix, jobs.eu.lever.co/x/uuid, api.lever.co/v0/postings/netflix
    (re.compile(r"^jobs(?:\.eu)?\.lever\.co$"), "lever", 0),
    (re.compile(r"^api(?:\.eu)?\.lever\.co$"), "lever", 2),
)


def resolve_board_url(url: str) -> tuple[str, str]:
    """(source, token) for a careers URL; ValueError naming the URL when it is not one we know."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    for pattern, source, index in _HOSTS:
        if pattern.match(host) and len(segments) > index:
            token = segments[index]
            if token == "embed" and len(segments) > index + 1:  # boards.greenhouse.io/embed/job_board?for=x
                break
            return source, token.lower() if source == "lever" else token
    if host.endswith("greenhouse.io"):
        for key, value in (p.split("=", 1) for p in parts.query.split("&") if "=" in p):
            if key == "for" and value:
                return "greenhouse", value
    raise ValueError(f"{url}: not a Greenhouse or Lever careers URL (e.g. https://boards.greenhouse.io/stripe, "
                     f"https://jobs.lever.co/netflix)")
