"""MTA-STS as a sending MTA sees it (issue 14): postfix-mta-sts-resolver's
STSResolver -- what Postfix senders use to look MTA-STS up -- reads the
`_mta-sts` TXT record from the stack's DNS server and fetches the policy over
HTTPS from https://mta-sts.<domain>/.well-known/mta-sts.txt, checking its
certificate, content type, size and fields; then its policy id tells it when
to fetch again.

The connector speaks HTTP behind a TLS proxy in production. Here the test is
that proxy: a certificate for mta-sts.<domain> from a CA made for the test
(trusted through SSL_CERT_FILE), and an HTTPS CONNECT proxy (HTTPS_PROXY,
which the resolver honours) that takes the fetch to it, since the test
domains resolve nowhere outside the stack's DNS server. The request and the
answer pass through unchanged, Host header included.
"""

import asyncio
import datetime as dt
import http.client
import importlib
import socket
import socketserver
import ssl
import sys
import threading

import postfix_mta_sts_resolver  # noqa: F401  (requirements.txt; its resolver module is imported below)
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

resolver_mod = None   # imported by the fixture, once SSL_CERT_FILE names the test CA


def _cert(name, issuer_key=None, issuer_name=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _pem(key, cert):
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()) if key else b""
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


class _Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def https_front(tmp_path, devenv, monkeypatch):
    """start(host) -> a TLS proxy for `host` in front of the connector, reached
    through an HTTPS CONNECT proxy named by HTTPS_PROXY."""
    ca_key, ca_cert = _cert("EmBoux test CA", ca=True)
    (tmp_path / "ca.pem").write_bytes(_pem(None, ca_cert)[1])
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    global resolver_mod
    if "aiohttp" in sys.modules:
        # aiohttp builds its verifying TLS context once, when imported: trust the test CA there too
        sys.modules["aiohttp"].connector._SSL_CONTEXT_VERIFIED.load_verify_locations(tmp_path / "ca.pem")
    resolver_mod = importlib.import_module("postfix_mta_sts_resolver.resolver")
    connector = devenv["EMBOUX_API_URL"].rstrip("/")
    servers = []

    def start(host):
        key, cert = _cert(host, ca_key, ca_cert.subject)
        key_pem, cert_pem = _pem(key, cert)
        (tmp_path / "leaf.pem").write_bytes(cert_pem + key_pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tmp_path / "leaf.pem")

        class Origin(socketserver.StreamRequestHandler):
            """One HTTP/1.1 request over TLS, passed to the connector as it came."""
            def handle(self):
                with ctx.wrap_socket(self.request, server_side=True) as tls:
                    f = tls.makefile("rb")
                    method, path, _ = f.readline().decode("latin-1").split(" ", 2)
                    headers = {}
                    while (line := f.readline().decode("latin-1").strip()):
                        k, _, v = line.partition(":")
                        headers[k.strip()] = v.strip()
                    r = requests.request(method, connector + path, headers={"Host": headers.get("Host", host)},
                                         timeout=10)
                    head = [f"HTTP/1.1 {r.status_code} {http.client.responses.get(r.status_code, '')}",
                            f"Content-Type: {r.headers['Content-Type']}", f"Content-Length: {len(r.content)}",
                            "Connection: close", "", ""]
                    tls.sendall("\r\n".join(head).encode() + r.content)

        origin = _Threaded(("127.0.0.1", 0), Origin)

        class Connect(socketserver.StreamRequestHandler):
            def handle(self):
                target = self.rfile.readline().decode().split()[1]
                while self.rfile.readline().strip():
                    pass
                assert target == f"{host}:443", target
                up = socket.create_connection(origin.server_address)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()

                def pipe(a, b):
                    try:
                        while (data := a.recv(65536)):
                            b.sendall(data)
                    except OSError:
                        pass
                    finally:
                        b.close()
                t = threading.Thread(target=pipe, args=(up, self.request), daemon=True)
                t.start()
                pipe(self.request, up)
                t.join(5)

        proxy = _Threaded(("127.0.0.1", 0), Connect)
        for srv in (origin, proxy):
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("https_proxy", raising=False)
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _resolve(devenv, domain, last_known_id=None, attempts=3):
    """The resolver's answer. A fetch error is asked again (at most `attempts`
    times): other parts of the shared dev stack restart the connector at times."""
    async def run():
        res = resolver_mod.STSResolver(loop=asyncio.get_running_loop(), timeout=10)
        res._resolver.nameservers = [devenv["DNS_RESOLVER"]]   # the stack's DNS server, host:port
        return await res.resolve(domain, last_known_id)
    for _ in range(attempts):
        got = asyncio.run(run())
        if got[0] is not resolver_mod.STSFetchResult.FETCH_ERROR:
            break
    return got


def test_a_sending_mta_fetches_and_follows_the_policy(tenant, dns_zones, devenv, https_front):
    domain = tenant.domain()
    https_front(f"mta-sts.{domain}")
    Result = resolver_mod.STSFetchResult

    def publish(state):
        rec = next(r for r in state["records"] if r["name"] == f"_mta-sts.{domain}")
        dns_zones.write(domain, [(rec["name"] + ".", "TXT", rec["value"])])

    testing = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "testing"}).json()
    publish(testing)
    status, (policy_id, policy) = _resolve(devenv, domain)
    assert status is Result.VALID, status
    assert policy_id == testing["policy_id"]
    assert policy["mode"] == "testing" and policy["max_age"] == 604800
    assert policy["mx"] == [devenv.get("MX_HOST") or devenv["MAIL_HOSTNAME"]]
    # nothing changed: the sender keeps its cached policy
    assert _resolve(devenv, domain, policy_id)[0] is Result.NOT_CHANGED

    enforce = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "enforce"}).json()
    publish(enforce)
    status, (new_id, policy) = _resolve(devenv, domain, policy_id)
    assert status is Result.VALID and new_id != policy_id and policy["mode"] == "enforce"


def test_a_domain_without_a_policy_gives_the_sender_nothing_to_enforce(tenant, dns_zones, devenv, https_front):
    """A stale `_mta-sts` record for a domain that set no mode: the fetch fails
    (404), so the sender enforces nothing -- never a half policy."""
    domain = tenant.domain()
    https_front(f"mta-sts.{domain}")
    dns_zones.write(domain, [(f"_mta-sts.{domain}.", "TXT", "v=STSv1; id=stale1")])
    assert _resolve(devenv, domain, attempts=1)[0] is resolver_mod.STSFetchResult.FETCH_ERROR
