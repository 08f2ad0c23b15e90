"""The deployment's webmail (docker/compose.yaml service `webmail`, Debian's
Roundcube; issue 13), used in Chromium as a mailbox holder would, against the
one deployment of the session (conftest.py): it logs in against the mail
container's Dovecot, sends through its submission service a message that
arrives in another mailbox, and changes a password through the connector
(container to container), after which IMAPS takes the new one. Apache and
PHP run without the env file's secrets."""

import imaplib
import uuid

import pytest
from deploy_stack import PASSWORD, run, wait_until
from playwright.sync_api import expect
from webmail_browser import change_password, chromium, login, send, sent_ok


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_webmail_is_healthy_and_published_on_loopback_only(deployment):
    d = deployment
    assert wait_until(lambda: run("podman", "healthcheck", "run", d.container("webmail"), check=False)
                      .returncode == 0, timeout=120), "healthcheck of webmail fails\n" + d.logs()
    ports = run("podman", "port", d.container("webmail")).stdout
    assert ports.strip() == f"80/tcp -> 127.0.0.1:{d.ports['WEBMAIL']}", ports


def test_log_in_and_send_a_message_that_arrives(deployment, hosted, browser):
    d = deployment
    alice, bob = hosted["alice"], hosted["bob"]
    page = login(browser, d.webmail_url, alice, PASSWORD)
    subject = f"deploy-webmail-{uuid.uuid4().hex[:8]}"
    send(page, d.webmail_url, bob, subject, "sent from the deployment's Roundcube")
    sent_ok(page)
    assert wait_until(lambda: subject in d.subjects(bob), timeout=120), d.logs()


def test_a_mailbox_holder_changes_the_password_in_webmail(deployment, hosted, browser):
    d = deployment
    carol = f"carol-{uuid.uuid4().hex[:6]}@{hosted['domain']}"
    r = d.api("POST", "/users/", json={"domain_name": hosted["domain"], "email": carol, "password": PASSWORD})
    assert r.status_code == 201, r.text
    page = login(browser, d.webmail_url, carol, PASSWORD)
    expect(change_password(page, d.webmail_url, "not my password", "deploy horse 22")) \
        .to_contain_text("incorrect", ignore_case=True)
    expect(change_password(page, d.webmail_url, PASSWORD, "deploy horse 22")).to_contain_text("Successfully saved")
    m = imaplib.IMAP4_SSL("127.0.0.1", d.ports["IMAPS"], ssl_context=d.tls(), timeout=30)
    m.login(carol, "deploy horse 22")
    m.logout()
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4_SSL("127.0.0.1", d.ports["IMAPS"], ssl_context=d.tls(), timeout=30).login(carol, PASSWORD)


def test_the_web_server_holds_none_of_the_env_files_secrets(deployment):
    d = deployment
    secrets = [line.split("=", 1)[1] for line in d.env_file.read_text().splitlines()
               if "=" in line and not line.startswith("#") and "PASSWORD" in line.split("=", 1)[0]]
    secrets.append(d.api_key)
    # Apache's master is pid 1 (its children, which run PHP, inherit its
    # environment); not this `podman exec` shell, which gets the container's
    # configured env
    assert d.exec("webmail", "cat", "/proc/1/comm").stdout.strip() == "apache2"
    env = d.exec("webmail", "cat", "/proc/1/environ").stdout
    assert "PATH=" in env, env
    for s in secrets:
        assert s and s not in env
