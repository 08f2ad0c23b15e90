"""Fetching a tenant's seed 002 JSON document: HTTPS only, bounded, and
never towards the platform's own network unless a dev/test setting says so.

- HTTPS with certificate and host name verification (the system's CAs, or
  JSON_PULL_CA_FILE's: the dev stack's test CA); no redirects followed.
- SSRF: the host name is resolved once, every address is checked (loopback,
  private, link-local, multicast, reserved, unspecified, the carrier-grade NAT
  range and their IPv6 forms are refused unless JSON_PULL_ALLOW_PRIVATE=1),
  and the connection goes to the address that was checked (no second lookup
  a DNS rebinding could answer differently).
- At most JSON_PULL_MAX_BYTES read (a larger body is refused, not truncated),
  each socket operation and the whole fetch within JSON_PULL_TIMEOUT seconds.

`fetch(url)` returns the body (bytes) or raises FetchError(reason).
"""

import http.client
import ipaddress
import socket
import ssl
import time
import urllib.parse

from . import settings

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class FetchError(Exception):
    """The document could not be fetched: the run is rejected with this reason."""


def check_url(url):
    """A URL a tenant may register: https, a host name, no credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"not a URL: {exc}") from None
    if parts.scheme != "https":
        raise FetchError("only https:// URLs are fetched")
    if not parts.hostname or parts.username or parts.password:
        raise FetchError("the URL needs a host and no user name or password")
    return parts.hostname, port or 443, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _allowed(ip):
    if str(settings.get("JSON_PULL_ALLOW_PRIVATE")).strip().lower() in ("1", "true", "yes"):
        return True
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.version == 4 and ip in _CGNAT) and not ip.is_multicast


def _address(host, port):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{host}: does not resolve ({exc})") from None
    ips = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    refused = [str(ip) for ip in ips if not _allowed(ip)]
    if refused or not ips:
        raise FetchError(f"{host} resolves to an address the platform does not fetch from "
                         f"({', '.join(refused) or 'none'}): loopback, private and reserved networks are refused")
    return str(ips[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the checked address, verifies the certificate for the host name."""

    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned = address

    def connect(self):
        sock = socket.create_connection((self._pinned, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _context():
    ctx = ssl.create_default_context(cafile=settings.get("JSON_PULL_CA_FILE") or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def fetch(url):
    host, port, target = check_url(url)
    timeout = settings.lenient("JSON_PULL_TIMEOUT")
    limit = settings.lenient("JSON_PULL_MAX_BYTES")
    deadline = time.monotonic() + timeout
    conn = _PinnedHTTPS(host, port, _address(host, port), timeout, _context())
    try:
        conn.request("GET", target, headers={"Accept": "application/json", "User-Agent": "EmBoux-json-pull"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise FetchError(f"HTTP {resp.status} from {host} (redirects are not followed)")
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise FetchError(f"the document is larger than {limit} bytes")
        body = b""
        while len(body) <= limit:
            if time.monotonic() > deadline:
                raise FetchError(f"the document took longer than {timeout:g} s")
            chunk = resp.read(min(65536, limit + 1 - len(body)))
            if not chunk:
                return body
            body += chunk
        raise FetchError(f"the document is larger than {limit} bytes")
    except ssl.SSLError as exc:
        raise FetchError(f"TLS with {host} failed: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"fetching from {host} failed: {exc}") from None
    finally:
        conn.close()
