"""The Odoo sync queue's behaviour without Odoo (addons/emboux_core/services/
sync_queue.py): lanes strictly in order, back-off, runs sent together, and
what each answer of the connector means, through the client seam
(ConnectorClient with a scripted session)."""

import datetime
from types import SimpleNamespace

import pytest
from odoo_services import REFUSED_CONNECTION, TIMEOUT, client, load

queue = load("sync_queue")
cc = load("connector_client")

NOW = datetime.datetime(2026, 11, 30, 12, 0, 0)
LATER = NOW + datetime.timedelta(seconds=30)


def job(lane, kind="domain.create", due=None, error=False, ident=None):
    return SimpleNamespace(lane=lane, kind=kind, next_attempt_at=due or NOW, last_error=error, id=ident)


@pytest.mark.parametrize("attempts,delay", [(0, 10), (1, 20), (2, 40), (8, 2560), (9, 3600), (12, 3600),
                                            (500, 3600)])
def test_backoff_doubles_from_ten_seconds_up_to_an_hour(attempts, delay):
    assert queue.backoff_seconds(attempts) == delay


def test_a_backing_off_job_holds_back_its_lane_only():
    a1 = job("partner:a", due=LATER, error="The connector did not answer in time.")
    a2 = job("partner:a", kind="mailbox.create")
    b1 = job("partner:b")
    ready, blocked, reasons = queue.select_ready([a1, a2, b1], NOW)
    assert ready == [b1]
    assert blocked == {"partner:a"}
    assert reasons == {"partner:a": "The connector did not answer in time."}


def test_due_jobs_of_a_lane_go_in_order():
    jobs = [job("partner:a", ident=i) for i in range(3)]
    ready, blocked, _ = queue.select_ready(jobs, NOW)
    assert [j.id for j in ready] == [0, 1, 2] and not blocked


def test_a_job_never_tried_is_due():
    j = job("partner:a")
    j.next_attempt_at = False
    assert queue.select_ready([j], NOW)[0] == [j]


def test_runs_group_consecutive_independent_jobs_of_one_kind():
    jobs = [job("l", "domain.create", ident=1), job("l", "mailbox.create", ident=2),
            job("l", "mailbox.create", ident=3), job("l", "alias.upsert", ident=4),
            job("l", "domain.suspend", ident=5), job("l", "domain.suspend", ident=6)]
    assert [[j.id for j in run] for run in queue.runs(jobs)] == [[1], [2, 3], [4], [5], [6]]


# --- answers through the client seam ---------------------------------------------
def test_success_is_done_with_the_connectors_json():
    c, session = client({("POST", "/domains/"): (201, {"name": "example.com"})})
    assert queue.send(c, ("POST", "/domains/", {"name": "example.com"})) == ("done", {"name": "example.com"})
    method, path, body, headers = session.calls[0]
    assert (method, path, body) == ("POST", "/domains/", {"name": "example.com"})
    assert headers["Authorization"] == "Bearer master-token"


def test_a_4xx_is_a_refusal_with_the_connectors_code():
    c, _ = client({("POST", "/users/"): (409, {"detail": "info@example.com exists", "code": "email_exists"})})
    outcome, exc = queue.send(c, ("POST", "/users/", {}))
    assert outcome == "refused"
    assert (exc.status, exc.code, exc.detail) == (409, "email_exists", "info@example.com exists")
    assert "already used" in str(exc)   # the back-office sentence chosen by the code


@pytest.mark.parametrize("answer", [(503, {"detail": "db down", "code": "unavailable"}), (500, None),
                                    (429, {"detail": "slow down", "code": "rate_limited"}), (408, None),
                                    TIMEOUT, REFUSED_CONNECTION])
def test_outages_and_throttling_are_retried_later(answer):
    c, _ = client({("PUT", "/domains/example.com/suspend"): answer})
    outcome, exc = queue.send(c, ("PUT", "/domains/example.com/suspend", None))
    assert outcome == "unavailable" and isinstance(exc, cc.ConnectorUnavailable)


def test_a_job_that_cannot_be_addressed_is_refused_without_a_request():
    c, session = client()
    exc = cc.ConnectorRefused("no key id", status=404, code="api_key_not_found")
    assert queue.send(c, exc) == ("refused", exc)
    assert session.calls == []


def test_a_token_in_a_path_never_reaches_an_error_message():
    c, _ = client({("PUT", "/api-keys/SECRET-TOKEN"): REFUSED_CONNECTION})
    outcome, exc = queue.send(c, ("PUT", "/api-keys/SECRET-TOKEN", {}))
    assert outcome == "unavailable"
    assert "SECRET-TOKEN" not in str(exc) and "SECRET-TOKEN" not in exc.path


def test_one_pass_over_two_lanes_when_one_customer_fails():
    """What the dispatcher does in one pass: lane a's first job meets an
    outage, so a's later job is not sent; lane b goes on."""
    c, session = client({("POST", "/domains/"): [REFUSED_CONNECTION, (201, {"name": "b.example"})],
                         ("PUT", "/domains/a.example/retention"): (200, {})})
    a1 = job("partner:a", "domain.create")
    a1.call = ("POST", "/domains/", {"name": "a.example"})
    a2 = job("partner:a", "domain.retention")
    a2.call = ("PUT", "/domains/a.example/retention", {"retention_days": 3})
    b1 = job("partner:b", "domain.create")
    b1.call = ("POST", "/domains/", {"name": "b.example"})
    ready, blocked, _ = queue.select_ready([a1, a2, b1], NOW)
    outcomes = {}
    for run in queue.runs(ready):
        for j in run:
            if j.lane in blocked:
                continue
            outcomes[id(j)], _ = queue.send(c, j.call)
            if outcomes[id(j)] == "unavailable":
                blocked.add(j.lane)
    assert outcomes == {id(a1): "unavailable", id(b1): "done"}
    assert [call[1] for call in session.calls] == ["/domains/", "/domains/"]
