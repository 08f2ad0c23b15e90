"""Odoo 19 in the deployment (compose service `odoo`, docker/Dockerfile.odoo):
emboux_core and emboux_saas installed at its first start, talking to the
connector over the compose network with the master token. Uses the
session's one deployment (conftest.py)."""

import uuid
import xmlrpc.client

import requests

from deploy_stack import run, wait_until

DB = "emboux"   # ODOO_DB_NAME of docker/mail.env.example


class Odoo:
    def __init__(self, url, password):
        self.url, self.password = url, password
        self.uid = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common").authenticate(DB, "admin", password, {})
        self.models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model, method, *args, **kw):
        return self.models.execute_kw(DB, self.uid, self.password, model, method, list(args), kw)


def test_odoo_answers_with_the_addons_installed_and_only_on_loopback(deployment):
    d = deployment
    assert wait_until(d.odoo_ready, timeout=600, step=2), d.logs()
    r = run("podman", "healthcheck", "run", d.container("odoo"), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    odoo = Odoo(d.odoo_url, d.odoo_password)
    assert odoo.uid, "admin cannot log in with ODOO_ADMIN_PASSWORD"
    states = {m["name"]: m["state"] for m in odoo("ir.module.module", "search_read",
                                                  [("name", "in", ["emboux_core", "emboux_saas", "contract"])],
                                                  fields=["name", "state"])}
    assert states == {"emboux_core": "installed", "emboux_saas": "installed", "contract": "installed"}, states
    assert odoo("ir.config_parameter", "get_param", "emboux.connector_url") == "http://connector:8600"
    # the attacker's side: a wrong password logs in nowhere, the database
    # manager lists nothing, and the port is published on loopback only
    assert not xmlrpc.client.ServerProxy(f"{d.odoo_url}/xmlrpc/2/common").authenticate(DB, "admin", "wrong", {})
    r = requests.post(d.odoo_url + "/web/database/list", json={"jsonrpc": "2.0", "params": {}}, timeout=30)
    assert "result" not in r.json(), r.text
    ports = run("podman", "port", d.container("odoo")).stdout
    assert ports.strip() == f"8069/tcp -> 127.0.0.1:{d.ports['ODOO']}", ports


def test_a_domain_and_mailbox_made_in_odoo_reach_the_connector(deployment):
    d = deployment
    odoo = Odoo(d.odoo_url, d.odoo_password)
    ref = f"odoo-{uuid.uuid4().hex[:8]}"
    partner = odoo("res.partner", "create", {"name": f"Deploy customer {ref}", "is_company": True})
    tenant = odoo("emboux.tenant", "create", {"name": f"Deploy {ref}", "partner_id": partner, "partner_ref": ref,
                                              "mailboxes_per_domain": 5, "domains_allowed": 2})
    name = f"{uuid.uuid4().hex[:10]}.odoo-deploy.net"
    domain = odoo("emboux.domain", "create", {"name": name, "tenant_id": tenant})
    box = odoo("emboux.mailbox", "create", {"domain_id": domain, "local_part": "info",
                                            "password": "odoo deploy horse 1"})

    def synced():
        recs = odoo("emboux.mailbox", "read", [box], fields=["sync_state", "sync_error"])
        assert recs[0]["sync_state"] != "error", recs
        return recs[0]["sync_state"] == "synced"
    # the queue is sent after each commit; Odoo's cron retries (a generous ceiling)
    assert wait_until(synced, timeout=300, step=2), \
        odoo("emboux.sync.job", "search_read", [], fields=["name", "state", "last_error"], limit=10)
    r = d.api("GET", f"/domains/{name}")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name, r.json()
    r = d.api("GET", f"/users/info@{name}/quota")
    assert r.status_code == 200, r.text
