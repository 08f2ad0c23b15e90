"""GET/PUT /users/{email}/vacation: the stored settings, their validation
and the tenant rules (the mail side: tests/inbound/test_vacation.py)."""

import psycopg2
import psycopg2.errors
import pytest


def test_defaults_then_set_and_keep(tenant, sql):
    d = tenant.domain()
    box = tenant.mailbox(d, "away")
    r = tenant.get(f"/users/{box}/vacation")
    assert r.status_code == 200, r.text
    assert r.json() == {"email": box, "enabled": False, "subject": "", "body": "",
                        "start": None, "end": None, "days": 7}
    want = {"enabled": True, "subject": "Away", "body": "Back soon.\nBye", "start": "2026-01-02",
            "end": "2026-01-09", "days": 3}
    r = tenant.put(f"/users/{box.upper()}/vacation", json=want)
    assert r.status_code == 200, r.text
    assert r.json() == {"email": box, **want}
    assert tenant.get(f"/users/{box}/vacation").json() == {"email": box, **want}
    # enabled is the only required field: the rest keeps its value
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": False})
    assert r.json() == {"email": box, **want, "enabled": False}
    rows = sql("SELECT v.sieve_script FROM mailbox_vacations v JOIN mailboxes m ON m.id = v.mailbox_id "
               "WHERE m.email = %s", (box,))
    assert rows == [{"sieve_script": None}]
    assert sql("SELECT 1 FROM mailserver.vacation_scripts WHERE email = %s", (box,)) == []


def test_dates_optional_and_cleared(tenant):
    box = tenant.mailbox(tenant.domain())
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": True, "subject": "S", "body": "B",
                                                   "start": "2030-05-01"})
    assert r.status_code == 200 and r.json()["start"] == "2030-05-01" and r.json()["end"] is None
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": True, "start": None})
    assert r.status_code == 200 and r.json()["start"] is None


@pytest.mark.parametrize("body,field", [
    ({}, "enabled"),
    ({"enabled": "yes"}, "enabled"),
    ({"enabled": True}, "subject"),                                   # required when enabled
    ({"enabled": True, "subject": "S"}, "body"),
    ({"enabled": True, "subject": "  ", "body": "B"}, "subject"),
    ({"enabled": True, "subject": "a\r\nBcc: x@example.com", "body": "B"}, "subject"),
    ({"enabled": True, "subject": "a\nb", "body": "B"}, "subject"),
    ({"enabled": False, "subject": "x" * 201}, "subject"),
    ({"enabled": False, "subject": 5}, "subject"),
    ({"enabled": False, "body": "x" * 10_001}, "body"),
    ({"enabled": False, "days": 0}, "days"),
    ({"enabled": False, "days": 31}, "days"),
    ({"enabled": False, "days": "7"}, "days"),
    ({"enabled": False, "days": True}, "days"),
    ({"enabled": False, "start": "2026-02-30"}, "start"),
    ({"enabled": False, "start": "20260101"}, "start"),
    ({"enabled": False, "end": "2026-01-01T00:00:00"}, "end"),
    ({"enabled": False, "end": 20260101}, "end"),
])
def test_bad_input_writes_nothing(tenant, sql, body, field):
    box = tenant.mailbox(tenant.domain())
    r = tenant.put(f"/users/{box}/vacation", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_field" and r.json()["detail"].startswith(f"{field}:")
    assert sql("SELECT 1 FROM mailbox_vacations v JOIN mailboxes m ON m.id = v.mailbox_id "
               "WHERE m.email = %s", (box,)) == []


def test_end_before_start_is_refused_and_keeps_the_stored_reply(tenant):
    box = tenant.mailbox(tenant.domain())
    good = {"enabled": True, "subject": "S", "body": "B", "start": "2030-05-01", "end": "2030-05-03", "days": 7}
    assert tenant.put(f"/users/{box}/vacation", json=good).status_code == 200
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": True, "subject": "New", "end": "2030-04-30"})
    assert r.status_code == 400 and r.json()["code"] == "vacation_dates", r.text
    # the other way round: a start after the stored end
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": True, "start": "2030-05-04"})
    assert r.status_code == 400 and r.json()["code"] == "vacation_dates", r.text
    assert tenant.get(f"/users/{box}/vacation").json() == {"email": box, **good}
    # one day is fine
    r = tenant.put(f"/users/{box}/vacation", json={"enabled": True, "start": "2030-05-03"})
    assert r.status_code == 200


def test_other_tenant_sees_nothing(make_tenant, api, sql):
    owner, other = make_tenant(), make_tenant()
    box = owner.mailbox(owner.domain())
    body = {"enabled": True, "subject": "S", "body": "B"}
    assert owner.put(f"/users/{box}/vacation", json=body).status_code == 200
    for r in (other.get(f"/users/{box}/vacation"),
              other.put(f"/users/{box}/vacation", json={"enabled": False})):
        assert r.status_code == 404 and r.json()["code"] == "mailbox_not_found", r.text
    missing = other.get(f"/users/nobody-{box}/vacation")
    assert missing.status_code == 404 and missing.json() == other.get(f"/users/{box}/vacation").json()
    assert owner.get(f"/users/{box}/vacation").json()["enabled"] is True
    # the master sees every mailbox
    assert api.get(f"/users/{box}/vacation").json()["subject"] == "S"


def test_deleting_the_mailbox_deletes_its_reply(tenant, sql):
    box = tenant.mailbox(tenant.domain())
    tenant.put(f"/users/{box}/vacation", json={"enabled": True, "subject": "S", "body": "B"})
    assert len(sql("SELECT 1 FROM mailserver.vacation_scripts WHERE email = %s", (box,))) == 1
    assert tenant.delete(f"/users/{box}").status_code == 204
    assert sql("SELECT 1 FROM mailserver.vacation_scripts WHERE email = %s", (box,)) == []


def test_only_dovecots_role_reads_the_scripts(devenv, tenant):
    """Least privilege (migration 0028): the view is granted to Dovecot's
    group alone; Postfix's role is refused."""
    box = tenant.mailbox(tenant.domain())
    tenant.put(f"/users/{box}/vacation", json={"enabled": True, "subject": "S", "body": "B"})
    conn = psycopg2.connect(devenv["MAILDB_DOVECOT_DSN"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT script_name, script FROM mailserver.vacation_scripts WHERE email = %s", (box,))
            rows = cur.fetchall()
    finally:
        conn.close()
    assert len(rows) == 1 and rows[0][0] == "vacation" and "vacation :days 7" in rows[0][1]
    conn = psycopg2.connect(devenv["MAILDB_POSTFIX_DSN"])
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT 1 FROM mailserver.vacation_scripts")
    finally:
        conn.close()
