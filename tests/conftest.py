"""Shared fixtures: the running stack described by var/dev.env.

Tests talk to the real connector over HTTP and read the real mail DB; start
the stack with `./dev up` (./dev test does it for you).
"""

import pathlib
import shlex
import uuid

import psycopg2
import psycopg2.extras
import pytest
import requests

from dns_zones import Zones, prove_ownership

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "var" / "dev.env"


def read_dev_env():
    if not ENV_FILE.exists():
        pytest.exit(f"{ENV_FILE} is missing: run ./dev up first", returncode=2)
    env = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


@pytest.fixture(scope="session")
def devenv():
    return read_dev_env()


class Api:
    """A thin HTTP client: api.post('/domains/', json=..., token=...)."""

    def __init__(self, base, master):
        self.base = base.rstrip("/")
        self.master = master
        self.session = requests.Session()

    def request(self, method, path, token=None, headers=None, **kwargs):
        # A connection per request: gunicorn closes an idle keep-alive
        # connection after 2 s, and a POST sent on one just as it closes is
        # lost ("Remote end closed connection without response"), not retried.
        hdrs = {"Authorization": f"Bearer {token or self.master}", "Connection": "close"}
        hdrs.update(headers or {})
        return self.session.request(method, self.base + path, headers=hdrs, timeout=30, **kwargs)

    def get(self, path, **kw): return self.request("GET", path, **kw)
    def post(self, path, **kw): return self.request("POST", path, **kw)
    def put(self, path, **kw): return self.request("PUT", path, **kw)
    def delete(self, path, **kw): return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def api(devenv):
    return Api(devenv["EMBOUX_API_URL"], devenv["EMBOUX_API_KEY"])


@pytest.fixture(scope="session")
def maildb(devenv):
    conn = psycopg2.connect(devenv["MAILDB_DSN"])
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def sql(maildb):
    """sql('SELECT ...', params) -> list of dict rows, on the real mail DB."""
    def run(query, params=None):
        with maildb.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    return run


@pytest.fixture
def txn(devenv):
    """A dict cursor on the real mail DB in a transaction rolled back at the
    end: to call the connector's own code (a job, an endpoint's function with
    `reset_daily(cur, None, body)` etc.) on the real DB with nothing it does
    staying -- e.g. the reset jobs, which close a period for every domain of
    the shared dev DB and only a period that is over (at most one a day over
    HTTP)."""
    conn = psycopg2.connect(devenv["MAILDB_DSN"])
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SET LOCAL lock_timeout = '20s'")
            yield cur
    finally:
        conn.rollback()
        conn.close()


def unique(prefix="t"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def domain_name():
    """A fresh, valid domain name no other test uses."""
    return f"{unique('d')}.emboux-test.net"


class Tenant:
    def __init__(self, api, partner_ref, token, zones=None):
        self.api, self.partner_ref, self.token = api, partner_ref, token
        self.zones = zones

    def get(self, path, **kw): return self.api.get(path, token=self.token, **kw)
    def post(self, path, **kw): return self.api.post(path, token=self.token, **kw)
    def put(self, path, **kw): return self.api.put(path, token=self.token, **kw)
    def delete(self, path, **kw): return self.api.delete(path, token=self.token, **kw)

    def domain(self, name=None, prove=True):
        """Create a domain with the client token; unless prove=False, prove
        its ownership the way an integrator does (TXT record in the test DNS
        server, then POST .../ownership/check) so that it receives mail."""
        name = name or f"{unique('d')}.emboux-test.net"
        r = self.post("/domains/", json={"name": name})
        assert r.status_code == 201, r.text
        if prove and r.json()["ownership"] == "pending":
            prove_ownership(self.zones, self, r.json())
        return r.json()["name"]

    def mailbox(self, domain, local=None, password="correct horse 1", **extra):
        email = f"{local or unique('u')}@{domain}"
        r = self.post("/users/", json={"domain_name": domain, "email": email, "password": password, **extra})
        assert r.status_code == 201, r.text
        return email


@pytest.fixture
def dns_zones(devenv):
    """Zones of the dev stack's NSD (tests/dns_zones.py), removed afterwards."""
    for key in ("DNS_ZONES_DIR", "NSD_CONF", "DNS_RESOLVER"):
        if not devenv.get(key):
            pytest.fail(f"{key} missing in var/dev.env: the DNS server is not up (./dev up)")
    z = Zones(devenv)
    yield z
    z.cleanup()


@pytest.fixture
def make_tenant(api, dns_zones):
    """make_tenant(**quotas) -> Tenant with a fresh partner and client token."""
    def make(**fields):
        partner_ref = unique("p")
        body = {"partner_ref": partner_ref, "domains_allowed": 10, "mailboxes_per_domain": 10,
                "aliases_per_mailbox": 5, **fields}
        r = api.post("/api-keys/", json=body)
        assert r.status_code == 201, r.text
        return Tenant(api, partner_ref, r.json()["token"], dns_zones)
    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def unique_ref():
    return unique("p")
