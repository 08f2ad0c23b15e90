"""The ONE deployment of a test session, shared by every module of
tests/deploy (test_compose.py, test_odoo.py, test_deployed_webmail.py, ...): built
and started once, removed at the end of the session.

Set-up (scripts/dev/stack-deploy.sh, `./dev deploy-setup`): podman,
podman-compose and the local base image localhost/debian:bookworm (no image
registry is reachable here). The images are built with `podman build`
(cached between runs); README "Production" says how long a first build
takes. Everything started is removed at the end, volumes included.
"""

import os
import time
import uuid

import pytest

from deploy_stack import PASSWORD, ROOT, Deployment, build_images, run, wait_until


@pytest.fixture(scope="session")
def images():
    """podman set up and every image built (cached layers), once a session."""
    if os.geteuid() != 0:
        pytest.fail("the deployment test needs root (podman, apt-get)")
    run("bash", str(ROOT / "dev"), "deploy-setup", cwd=ROOT, timeout=1800)
    started = time.monotonic()
    build_images()
    return time.monotonic() - started


@pytest.fixture(scope="session")
def deployment(images, tmp_path_factory):
    built = time.monotonic()
    d = Deployment(tmp_path_factory.mktemp("deploy"))
    try:
        d.compose("up", "-d", "--no-build")
        ok = wait_until(d.healthy, timeout=600, step=2)
        assert ok, "the deployment did not become healthy\n" + d.logs()
        d.ca.write_text(d.exec("mail", "cat", "/etc/emboux-mail/tls/ca.pem").stdout)
        # Odoo installs its modules on the first start: wait for it here, so
        # that no test restarts the stack in the middle of that install
        assert wait_until(d.odoo_ready, timeout=900, step=3), "Odoo did not come up\n" + d.logs()
        # port 25 defers until Rspamd has loaded its rules (docs/inbound.md)
        assert wait_until(d.filter_ready, timeout=600, step=3), "Rspamd did not come up\n" + d.logs()
        print(f"\ndeployment: images {images:.0f} s, up and healthy {time.monotonic() - built:.0f} s")
        yield d
    finally:
        d.remove()


@pytest.fixture(scope="session")
def hosted(deployment):
    """A tenant, its master-created (vouched) domain and two mailboxes, made
    through the deployment's API."""
    d = deployment
    ref = f"p{uuid.uuid4().hex[:8]}"
    r = d.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 2, "mailboxes_per_domain": 5})
    assert r.status_code == 201, r.text
    domain = f"{uuid.uuid4().hex[:10]}.deploy-test.net"
    r = d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref})
    assert r.status_code == 201, r.text
    boxes = []
    for local in ("alice", "bob"):
        r = d.api("POST", "/users/", json={"domain_name": domain, "email": f"{local}@{domain}",
                                           "password": PASSWORD})
        assert r.status_code == 201, r.text
        boxes.append(f"{local}@{domain}")
    return {"domain": domain, "alice": boxes[0], "bob": boxes[1], "partner_ref": ref}
