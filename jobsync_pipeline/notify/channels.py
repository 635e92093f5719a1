"""Users' notification channels: apprise URLs checked before jobsync stores or uses them.

A channel URL is user input that makes the server open network connections, so it is checked
the way any server-side request forgery target is: apprise must understand it, and every host the
user chose (a web hook's host, an SMTP server) must resolve only to public addresses, unless the
operator allowed it in JOBSYNC_NOTIFY_ALLOW_HOSTS (host names or CIDR ranges). Services whose API
host is fixed by apprise (slack, discord, tgram...) carry tokens, not hosts, and need no check.

Channel URLs also carry passwords and tokens, so nothing here ever puts the URL itself in an
error message: users and logs only see `mask`ed URLs.

The host check happens when the URL is parsed; apprise resolves the name again when it sends, so
a name whose DNS answer changes in between (DNS rebinding) and HTTP redirects to internal
addresses are for the sending side to handle (e.g. `AppriseAsset(http_redirects=False)`).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import apprise

ALLOW_ENV = "JOBSYNC_NOTIFY_ALLOW_HOSTS"

# apprise's registry of notification services, keyed by URL scheme (a process-wide singleton).
_SERVICES = apprise.NotificationManager()
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_WELL_KNOWN = "mailto, slack, discord, tgram, ntfy, json or jsons"
# Services that act on the machine jobsync runs on (its syslog, its desktop): never a user's channel.
_LOCAL_ONLY = frozenset({"syslog", "dbus", "kde", "qt", "glib", "gnome", "macosx", "windows"})
# Lower-case dotted names (example.com, smtp.gmail.com) are host names, not secrets.
_HOST_NAME = re.compile(r"(?:[a-z0-9_-]+\.)+[a-z][a-z0-9-]*\.?")
_ALLOW_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", re.IGNORECASE)
# "user:" opening a URL, where the colon starts a password rather than a port (host:8080/...).
_USER_PASSWORD = re.compile(r"([^:@/?#\[\]]*):(?!\d*(?:[/?#]|$))")
# Query keys whose values are credentials whatever they look like.
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|sig|cred|session|cookie", re.IGNORECASE)

Resolve = Callable[..., Sequence[tuple]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ChannelError(ValueError):
    """a channel URL that cannot be used; the message is one line a user reads, never containing
    the URL's credentials"""


@dataclass(frozen=True)
class Channel:
    """A channel URL apprise can use and whose user-chosen hosts passed `check_host`."""

    scheme: str  # "json", "mailto", "slack", ...
    masked_url: str  # the URL with every credential/token masked, safe to log and show
    hosts: tuple[str, ...]  # user-chosen network hosts the channel connects to; () for fixed APIs


def parse_channel(url: str, *, allow: str | Sequence[str] = "",
                  resolve: Resolve = socket.getaddrinfo) -> Channel:
    """The channel a user's apprise URL describes, or ChannelError saying (one line) why it cannot
    be used. `allow` is JOBSYNC_NOTIFY_ALLOW_HOSTS; `resolve` is getaddrinfo (tests pass a fake)."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise ChannelError("channel URL is empty")
    allow = allowed(allow)
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    plugin = _instantiate(text)
    if scheme not in _SERVICES:
        # apprise also takes some services' own URLs (https://discord.com/api/webhooks/...)
        if plugin is None:
            hint = "; for a plain web hook use json:// or jsons://" if scheme in ("http", "https") else ""
            if not scheme:
                raise ChannelError(f"channel URL has no scheme; use one such as {_WELL_KNOWN}")
            raise ChannelError(
                f"unknown scheme {scheme!r}; use one apprise knows, such as {_WELL_KNOWN}{hint}")
        scheme = plugin.url(privacy=True).partition("://")[0].lower()
    elif plugin is None:
        if not _SERVICES[scheme].enabled:
            raise ChannelError(f"channel scheme {scheme!r} is not available on this server")
        raise ChannelError(f"{mask(text)} is not a valid {scheme} URL")

    if scheme in _LOCAL_ONLY:
        raise ChannelError(f"channel scheme {scheme!r} acts on the jobsync server itself; use one such as {_WELL_KNOWN}")
    hosts = _hosts(plugin)
    for host in hosts:
        check_host(host, allow, resolve)
    # apprise's privacy URL masks what it knows are credentials, but not json headers (+Authorization=...)
    # or tokens in a web hook's path, so it goes through `mask` as well.
    return Channel(scheme=scheme, masked_url=mask(plugin.url(privacy=True)), hosts=hosts)


def _instantiate(text: str):
    """apprise's plugin for the URL, or None. apprise already returns None for URLs it cannot use;
    anything it raises is treated the same, since its message may quote the URL."""
    try:
        return apprise.Apprise.instantiate(text)
    except Exception:  # noqa: BLE001 - any failure means "not a usable URL"
        return None


def _hosts(plugin) -> tuple[str, ...]:
    """The hosts the user chose: the SMTP server for e-mail, the URL's host for services whose URL
    template has a {host} (json, xml, form, ntfy, gotify, matrix...). Services without one (slack,
    discord, tgram) talk to their fixed public API and their URL's "host" is a token."""
    host = getattr(plugin, "smtp_host", None) or (
        plugin.host if "host" in getattr(plugin, "template_tokens", {}) else None)
    if not isinstance(host, str) or not host.strip():
        return ()
    return (host.strip().strip("[]").rstrip(".").lower(),)


def check_host(host: str, allow, resolve: Resolve = socket.getaddrinfo) -> None:
    """Raise ChannelError unless every address `host` resolves to is public or allowed.

    Resolved addresses are checked, not the name, so names of internal hosts, DNS names pointing
    at private addresses and odd spellings (2130706433, 0x7f.1) are all caught. An allowed host
    name is trusted without resolving it; otherwise each non-public address must lie in an allowed
    CIDR range."""
    allow = allowed(allow)
    name = str(host).strip().strip("[]").rstrip(".").lower()
    if not name or any(c.isspace() or not c.isprintable() for c in name):
        raise ChannelError("channel host is not a valid host name")
    if name in allow:
        return
    networks = [entry for entry in allow if not isinstance(entry, str)]
    addresses, literal = _addresses(name, resolve)
    for address in addresses:
        reason = _refusal(address)
        if reason and not any(address.version == net.version and address in net for net in networks):
            shown = f"::ffff:{address.ipv4_mapped}" if getattr(address, "ipv4_mapped", None) else address
            where = "is" if literal else f"resolves to {shown},"
            raise ChannelError(f"channel host {name} {where} {_article(reason)} {reason} address; "
                               f"set {ALLOW_ENV} to allow it")


def _addresses(name: str, resolve: Resolve) -> tuple[list[Address], bool]:
    """The addresses a connection to `name` may use, and whether `name` is an IP literal (which
    needs no DNS: the address is the literal itself)."""
    try:
        return [ipaddress.ip_address(name)], True
    except ValueError:
        pass
    try:
        infos = resolve(name, None)
        # getaddrinfo's sockaddr[0] is the address; IPv6 ones may carry a %scope
        addresses = [ipaddress.ip_address(str(info[4][0])) for info in infos]
    except (OSError, UnicodeError, ValueError, IndexError, TypeError):
        addresses = []
    if not addresses:
        raise ChannelError(f"channel host {name} does not resolve")
    return addresses, False


def _refusal(address: Address) -> str | None:
    """Why a connection to `address` could reach something internal, or None for a public one.
    IPv6 forms that embed an IPv4 address (::ffff:a.b.c.d, 6to4 2002::/16) are judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            inner = _refusal(address.ipv4_mapped)
            return inner and f"IPv4-mapped {inner}"
        if address.sixtofour is not None:
            inner = _refusal(address.sixtofour)
            return inner and f"6to4 {inner}"
    for reason, flag in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                         ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                         ("reserved", address.is_reserved), ("private", address.is_private),
                         ("non-public", not address.is_global)):
        if flag:
            return reason
    return None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" or word.startswith("IPv4") else "a"


def allowed(allow: str | Sequence[str]) -> tuple:
    """JOBSYNC_NOTIFY_ALLOW_HOSTS parsed: lower-case host names (str) and ip_network ranges.

    Entries are separated by commas or spaces; an IP address is its own /32 or /128 range. Accepts
    its own result too, so callers may pass the raw setting or the parsed tuple. A bad entry is a
    ChannelError naming it (the setting is the operator's, not a secret)."""
    items = [allow] if isinstance(allow, str) else list(allow or ())
    parsed: list[str | Network] = []
    for item in items:
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            parsed.append(item)
        else:
            parsed.extend(_allow_entry(entry.strip("[]")) for entry in str(item).replace(",", " ").split())
    return tuple(parsed)


def _allow_entry(entry: str) -> str | Network:
    """One allow-list entry: a CIDR range or IP address if it parses as one, else a host name."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    if "/" in entry or ":" in entry or not _ALLOW_NAME.fullmatch(entry.rstrip(".")):
        raise ChannelError(f"{ALLOW_ENV}: {entry!r} is neither a host name nor a CIDR range")
    return entry.rstrip(".").lower()


def mask(url: str) -> str:
    """`url` with its secrets masked, for error messages and logs; works on any text (also URLs
    apprise cannot parse) and never raises.

    The password in user:password@ becomes ****, up to the last @: a password typed without
    percent-encoding may hold @ / ? # itself, and masking too much beats showing part of it. User
    names, hosts, path segments and query values that look like tokens (16+ characters, or 8+
    mixing cases or letters and digits; lower-case dotted host names excepted) become their first
    and last character, as apprise shows them (T...C). Query values whose key names a credential,
    and json headers (+Name=value), become ****. The result is one line."""
    try:
        text = " ".join(str(url).split())
        text = "".join(c if c.isprintable() else "?" for c in text)
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, rest = "", text
        userinfo = ""
        password = _USER_PASSWORD.match(rest)
        if password and "@" in rest[password.end():]:
            userinfo = f"{_word(password.group(1))}:****@"
            rest = rest[rest.rindex("@") + 1:]
        rest, qmark, query = rest.partition("?")
        netloc, slash, path = rest.partition("/")
        user, at, hostport = netloc.rpartition("@")
        if at:
            userinfo += f"{_word(user)}@"
        hostport = ":".join(_word(part) for part in hostport.split(":"))
        path = "/".join(_word(segment) for segment in path.split("/"))
        query = "&".join(_query_pair(pair) for pair in query.split("&"))
        return f"{scheme}{sep}{userinfo}{hostport}{slash}{path}{qmark}{query}"
    except Exception:  # noqa: BLE001 - masking must never be the thing that fails
        return "****"


def _query_pair(pair: str) -> str:
    key, eq, value = pair.partition("=")
    if not eq:
        return _word(key)
    if unquote(key).startswith("+") or _SECRET_KEY.search(unquote(key)):
        return f"{key}=****" if value else pair
    return f"{key}={_word(value)}"


def _word(word: str) -> str:
    """`word` masked the way apprise masks tokens (abcdef123 -> a...3) when it looks like one."""
    if len(word) < 8 or _HOST_NAME.fullmatch(word):
        return word
    kinds = sum(bool(re.search(chars, word)) for chars in ("[a-z]", "[A-Z]", "[0-9]"))
    return f"{word[0]}...{word[-1]}" if kinds >= 2 or len(word) >= 16 else word
