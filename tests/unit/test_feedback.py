"""Provider feedback normalisers: what a webhook's addresses become, and
when the guillotine falls (docs/sending-identity.md)."""

import pytest

from emboux_connector import feedback


@pytest.mark.parametrize("raw,email", [
    ("Bob@Example.COM", "bob@example.com"),
    ("<bob@example.com>", "bob@example.com"),
    (" bob@bücher.de ", "bob@xn--bcher-kva.de"),
    ("no-at-sign", None),
    ("@example.com", None),
    (None, None),
    (42, None),
])
def test_normalise_email(raw, email):
    assert feedback.normalise_email(raw) == email


@pytest.mark.parametrize("raw,domain", [
    ("Alice <alice@Shop.Example.com>", "shop.example.com"),
    ("alice@example.com", "example.com"),
    ("nobody", None),
])
def test_sender_domain(raw, domain):
    assert feedback.sender_domain(raw) == domain


def test_guillotine_needs_volume_and_a_rate_above_threshold():
    t = feedback.Thresholds(bounce_rate=0.5, complaint_rate=0.1, min_volume=100)
    assert feedback.guillotine_reason({"sent_month": 50, "bounce_count": 50, "complaint_count": 0}, t) is None
    assert feedback.guillotine_reason({"sent_month": 1000, "bounce_count": 5, "complaint_count": 1}, t) is None
    assert "bounce" in feedback.guillotine_reason(
        {"sent_month": 1000, "bounce_count": 6, "complaint_count": 0}, t)
    assert "complaint" in feedback.guillotine_reason(
        {"sent_month": 1000, "bounce_count": 0, "complaint_count": 2}, t)


def test_guillotine_counts_outbound_spam_whatever_the_volume():
    t = feedback.Thresholds(bounce_rate=0.5, complaint_rate=0.1, min_volume=100, spam_limit=5)
    quiet = {"sent_month": 3, "bounce_count": 0, "complaint_count": 0}
    assert feedback.guillotine_reason({**quiet, "spam_count": 4}, t) is None
    assert "5 messages refused as spam" in feedback.guillotine_reason({**quiet, "spam_count": 5}, t)
    off = feedback.Thresholds(spam_limit=0)
    assert feedback.guillotine_reason({**quiet, "spam_count": 500}, off) is None
