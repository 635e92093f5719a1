"""Notification channel URLs: apprise parses them, their secrets never show, and their user-chosen
hosts must be public or allowed. No network: DNS is a fake `resolve` with getaddrinfo's shape."""
from __future__ import annotations

import socket

import pytest

from jobsync_pipeline.notify.channels import Channel, ChannelError, allowed, check_host, mask, parse_channel

DNS = {
    "example.com": ["93.184.215.14"],
    "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "smtp.example.net": ["151.101.1.69"],
    "smtp.gmail.com": ["142.250.102.108"],
    "ntfy.example.org": ["159.203.148.75"],
    "intranet.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "split.example.com": ["93.184.215.14", "192.168.0.7"],
    "v6local.example.com": ["fe80::1%eth0"],
    "twonets.example.com": ["10.1.2.3", "192.168.0.7"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "mapped6to4.example.com": ["2002:a00:1::"],
}


class FakeDNS:
    """getaddrinfo(host, None) from the table above; an unknown name fails as getaddrinfo does."""

    def __init__(self, table=DNS):
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 0, 0, 0)) if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))
            for address in self.table[host]
        ]


def no_dns(host, port, *args, **kwargs):
    raise AssertionError(f"resolved {host!r}, which needs no resolution")


SLACK_TOKENS = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ")
DISCORD_ID, DISCORD_TOKEN = "123456789012345678", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
TGRAM_TOKEN = "123456789:ABCdefGHIjklMNOpqrSTUvwxYZ"

# url, scheme, hosts, the secrets in the url
VALID = [
    ("mailto://jobs:Hunter2pw@example.com", "mailto", ("example.com",), ["Hunter2pw"]),
    ("mailto://jobs:Hunter2pw@example.com?smtp=smtp.example.net", "mailto", ("smtp.example.net",),
     ["Hunter2pw"]),
    ("mailto://jobs:Hunter2pw@gmail.com", "mailto", ("smtp.gmail.com",), ["Hunter2pw"]),
    ("slack://{}/{}/{}/#jobs".format(*SLACK_TOKENS), "slack", (), list(SLACK_TOKENS)),
    (f"discord://{DISCORD_ID}/{DISCORD_TOKEN}", "discord", (), [DISCORD_ID, DISCORD_TOKEN]),
    (f"https://discord.com/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}", "discord", (),
     [DISCORD_ID, DISCORD_TOKEN]),
    (f"tgram://{TGRAM_TOKEN}/987654", "tgram", (), [TGRAM_TOKEN, "ABCdefGHIjklMNOpqrSTUvwxYZ"]),
    ("json://hookuser:Sup3rSecret@hooks.example.com:8080/notify", "json", ("hooks.example.com",),
     ["Sup3rSecret"]),
    ("jsons://hooks.example.com/hook/9f8e7d6c5b4a3f2e1d0c"
     "?+Authorization=Bearer%20tok3nValue&-apikey=Kq7Zp2Xw9",
     "jsons", ("hooks.example.com",), ["9f8e7d6c5b4a3f2e1d0c", "tok3nValue", "Kq7Zp2Xw9"]),
    ("ntfys://alerts:Ntfy9Passw0rd@ntfy.example.org/jobs", "ntfys", ("ntfy.example.org",), ["Ntfy9Passw0rd"]),
]


@pytest.mark.parametrize("url, scheme, hosts, secrets", VALID, ids=[f"{i}-{v[1]}" for i, v in enumerate(VALID)])
def test_each_scheme_parses_with_its_secrets_masked(url, scheme, hosts, secrets):
    dns = FakeDNS()
    channel = parse_channel(url, resolve=dns)
    assert isinstance(channel, Channel)
    assert channel.scheme == scheme
    assert channel.hosts == hosts
    assert dns.asked == list(hosts)
    assert channel.masked_url.split("://")[0] in (scheme, scheme + "s")
    for secret in secrets:
        assert secret not in channel.masked_url
        assert secret not in mask(url)


# each scheme's URL made unusable (broken, or its host refused): the message never shows the secrets
REFUSED = [
    ("mailto://jobs:Hunter2pw@", ["Hunter2pw"]),
    ("mailto://jobs:Hunter2pw@intranet.example.com", ["Hunter2pw"]),
    ("mailto://jobs:Hunter2pw@example.com?smtp=127.0.0.1", ["Hunter2pw"]),
    (f"slack://{SLACK_TOKENS[2]}", [SLACK_TOKENS[2]]),
    (f"discord://{DISCORD_TOKEN}", [DISCORD_TOKEN]),
    ("tgram://ABCdefGHIjklMNOpqrSTUvwxYZ", ["ABCdefGHIjklMNOpqrSTUvwxYZ"]),
    ("json://hookuser:Sup3rSecret@", ["Sup3rSecret"]),
    ("json://hookuser:Sup3rSecret@127.0.0.1:8080/notify", ["Sup3rSecret"]),
    ("jsons://hookuser:Sup3rSecret@intranet.example.com/hook/9f8e7d6c5b4a3f2e1d0c",
     ["Sup3rSecret", "9f8e7d6c5b4a3f2e1d0c"]),
    ("xyz://user:Sup3rSecret@example.com/9f8e7d6c5b4a3f2e1d0c", ["Sup3rSecret", "9f8e7d6c5b4a3f2e1d0c"]),
]


@pytest.mark.parametrize("url, secrets", REFUSED)
def test_error_messages_never_show_secrets(url, secrets):
    with pytest.raises(ChannelError) as raised:
        parse_channel(url, resolve=FakeDNS())
    message = str(raised.value)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message


@pytest.mark.parametrize("url", ["", "   ", "\n"])
def test_empty_url(url):
    with pytest.raises(ChannelError, match="empty"):
        parse_channel(url, resolve=no_dns)


def test_unknown_scheme_names_it_and_known_ones():
    with pytest.raises(ChannelError) as raised:
        parse_channel("xyz://user:Sup3rSecret@example.com", resolve=no_dns)
    assert str(raised.value).startswith("unknown scheme 'xyz'; ")
    assert "mailto" in str(raised.value) and "json" in str(raised.value)


def test_plain_https_url_points_at_json():
    with pytest.raises(ChannelError, match=r"unknown scheme 'https'.*json://"):
        parse_channel("https://example.com/hook", resolve=no_dns)


def test_url_without_scheme():
    with pytest.raises(ChannelError, match="no scheme"):
        parse_channel("jobs@example.com", resolve=no_dns)


def test_unparseable_url_of_a_known_scheme():
    with pytest.raises(ChannelError) as raised:
        parse_channel(f"discord://{DISCORD_TOKEN}", resolve=no_dns)
    masked = f"discord://{DISCORD_TOKEN[0]}...{DISCORD_TOKEN[-1]}"
    assert str(raised.value) == f"{masked} is not a valid discord URL"


@pytest.mark.parametrize("host, reason", [
    ("127.0.0.1", "a loopback"),
    ("127.8.9.10", "a loopback"),
    ("[::1]", "a loopback"),
    ("10.0.0.5", "a private"),
    ("192.168.1.1", "a private"),
    ("172.16.0.1", "a private"),
    ("[fd12::1]", "a private"),
    ("169.254.169.254", "a link-local"),
    ("[fe80::1]", "a link-local"),
    ("[2002:7f00:1::]", "a 6to4 loopback"),
    ("0.0.0.0", "an unspecified"),
    ("224.0.0.1", "a multicast"),
    ("240.0.0.1", "a reserved"),
    ("100.64.0.1", "a non-public"),
])
def test_internal_addresses_are_refused(host, reason):
    with pytest.raises(ChannelError) as raised:
        parse_channel(f"json://{host}:8080/notify", resolve=no_dns)
    name = host.strip("[]")
    assert str(raised.value) == (f"channel host {name} is {reason} address; "
                                 "set JOBSYNC_NOTIFY_ALLOW_HOSTS to allow it")


@pytest.mark.parametrize("host, reason", [
    ("::ffff:127.0.0.1", "an IPv4-mapped loopback"),
    ("[::ffff:10.0.0.1]", "an IPv4-mapped private"),
    ("::ffff:169.254.169.254", "an IPv4-mapped link-local"),
])
def test_ipv4_mapped_literals_are_refused(host, reason):
    # apprise itself rejects these as URL hosts; check_host judges them by the IPv4 address inside
    with pytest.raises(ChannelError, match=f"^channel host {host.strip('[]')} is {reason} address; "):
        check_host(host, "", resolve=no_dns)


def test_public_addresses_are_accepted():
    assert parse_channel("json://93.184.215.14/notify", resolve=no_dns).hosts == ("93.184.215.14",)
    assert parse_channel("xml://[2606:2800:220:1::1]/", resolve=no_dns).hosts == ("2606:2800:220:1::1",)
    assert parse_channel("form://hooks.example.com/", resolve=FakeDNS()).hosts == ("hooks.example.com",)


@pytest.mark.parametrize("name, address, reason", [
    ("intranet.example.com", "10.1.2.3", "private"),
    ("metadata.example.com", "169.254.169.254", "link-local"),
    ("split.example.com", "192.168.0.7", "private"),  # one bad answer among good ones is enough
    ("v6local.example.com", "fe80::1%eth0", "link-local"),
    ("mapped.example.com", "::ffff:127.0.0.1", "IPv4-mapped loopback"),  # an AAAA record can say this
    ("mapped6to4.example.com", "2002:a00:1::", "6to4 private"),  # 2002:0a00:0001:: embeds 10.0.0.1
])
def test_names_resolving_to_internal_addresses_are_refused(name, address, reason):
    with pytest.raises(ChannelError) as raised:
        parse_channel(f"jsons://{name}/hook", resolve=FakeDNS())
    article = "an" if reason.startswith("IPv4") else "a"
    assert str(raised.value) == (f"channel host {name} resolves to {address}, {article} {reason} address; "
                                 "set JOBSYNC_NOTIFY_ALLOW_HOSTS to allow it")


def test_name_that_does_not_resolve():
    with pytest.raises(ChannelError) as raised:
        parse_channel("json://nowhere.example.com/hook", resolve=FakeDNS())
    assert str(raised.value) == "channel host nowhere.example.com does not resolve"
    with pytest.raises(ChannelError, match="does not resolve"):
        check_host("empty.example.com", "", resolve=FakeDNS({"empty.example.com": []}))


def test_allowed_host_name_is_trusted_without_resolving():
    channel = parse_channel("json://Intranet.Example.COM:8080/hook", allow="localhost, intranet.example.com",
                            resolve=no_dns)
    assert channel.hosts == ("intranet.example.com",)
    parse_channel("json://localhost:8080/hook", allow=["LOCALHOST"], resolve=no_dns)
    with pytest.raises(ChannelError, match="resolves to 10.1.2.3"):
        # exact names only: an allowed name does not allow its subdomains or parents
        parse_channel("json://intranet.example.com/hook", allow="example.com", resolve=FakeDNS())


def test_allowed_cidr_ranges():
    dns = FakeDNS()
    assert parse_channel("json://intranet.example.com/hook", allow="10.0.0.0/8", resolve=dns).hosts
    parse_channel("json://127.0.0.1:8080/hook", allow="127.0.0.1", resolve=no_dns)
    parse_channel("json://[fd12::1]/hook", allow="fd00::/8 10.0.0.0/8", resolve=no_dns)
    check_host("twonets.example.com", "10.0.0.0/8,192.168.0.0/16", resolve=dns)
    with pytest.raises(ChannelError, match="resolves to 192.168.0.7, a private"):
        # every internal address must be allowed, not just one of them
        check_host("twonets.example.com", "10.0.0.0/8", resolve=dns)
    with pytest.raises(ChannelError, match="IPv4-mapped"):
        # an IPv4 range does not let an IPv6 form of the address in
        check_host("::ffff:127.0.0.1", "10.0.0.0/8", resolve=no_dns)


def test_allowed_parses_the_setting():
    parsed = allowed(" localhost,10.0.0.0/8  fd00::/8,Hooks.Internal. 192.168.1.5 ")
    assert [str(entry) for entry in parsed] == ["localhost", "10.0.0.0/8", "fd00::/8", "hooks.internal",
                                               "192.168.1.5/32"]
    assert allowed(parsed) == parsed
    assert allowed(["a.example.com, b.example.com"]) == ("a.example.com", "b.example.com")
    assert allowed("") == () == allowed([])


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0/8x", "fd00::/129", "not a/range", "bad_host!"])
def test_bad_allow_entry_is_named(entry):
    with pytest.raises(ChannelError) as raised:
        parse_channel("json://example.com/", allow=f"localhost,{entry}", resolve=FakeDNS())
    bad = entry.split()[-1] if " " in entry else entry
    assert repr(bad) in str(raised.value)
    assert "JOBSYNC_NOTIFY_ALLOW_HOSTS" in str(raised.value)


@pytest.mark.parametrize("text, hidden, shown", [
    ("foo://user:hunter2@host.example.com/path", ["hunter2"], "foo://user:****@host.example.com/path"),
    ("user:hunter2@host", ["hunter2"], "user:****@host"),
    ("json://host.example.com:8080/to@example.org", [], "json://host.example.com:8080/to@example.org"),
    ("ntfys://:tk_Ab12Cd34@ntfy.example.org/jobs", ["tk_Ab12Cd34"], "ntfys://:****@ntfy.example.org/jobs"),
    # passwords typed without percent-encoding: masked whole, whatever they hold
    ("json://user:pa/ss@host.example.com/x", ["pa/ss", "pa"], "json://user:****@host.example.com/x"),
    ("json://user:pa?ss#x@host.example.com", ["pa?ss#x", "pa"], "json://user:****@host.example.com"),
    ("mailto://me:p@ss/w?rd@gmail.com", ["ss/w", "rd"], "mailto://me:****@gmail.com"),
    ("xyz://host.example.com/Abc123XyZ9?token=abc&mode=fast&+X-Key=v1",
     ["Abc123XyZ9", "token=abc", "v1"], "xyz://host.example.com/A...9?token=****&mode=fast&+X-Key=****"),
    ("tgram://123456789:ABCdefGHIjklMNOpqrSTUvwxYZ/1", ["ABCdefGHIjklMNOpqrSTUvwxYZ"], None),
    ("json://[::1/x:Sup3rSecret@", ["Sup3rSecret"], None),
    ("a:b:c://::@@//??==&&", [], None),
    ("json://user:pw\n@host\x00/x", ["pw"], None),
])
def test_mask_hides_secrets_in_anything(text, hidden, shown):
    masked = mask(text)
    for secret in hidden:
        assert secret not in masked
    assert "\n" not in masked and masked.isprintable()
    if shown is not None:
        assert masked == shown


def test_mask_never_raises():
    for value in ["", None, 42, "://", "@", "?", "%", "[", "\udcff"]:
        assert isinstance(mask(value), str)
