"""connector/emboux_connector/spam.py: the settings' validation and the Rspamd
settings map built from them (no services)."""

import json

import pytest

from emboux_connector import spam
from emboux_connector.errors import ApiError


def test_merge_keeps_what_is_not_given_and_normalises_senders():
    new = spam.merge(spam.DEFAULTS, {"block_senders": ["Bad@Example.COM", "evil.example", "@x.example",
                                                       "bad@example.com"]})
    assert new["junk_score"] == 6.0 and new["reject_score"] == 15.0 and new["greylisting"] is False
    assert new["block_senders"] == ["bad@example.com", "@evil.example", "@x.example"]


@pytest.mark.parametrize("body", [
    {"junk_score": 15}, {"reject_score": 5, "junk_score": 6}, {"junk_score": float("nan")},
    {"junk_score": True}, {"reject_score": 1001}, {"greylisting": 1}, {"allow_senders": "a@b.example"},
    {"allow_senders": ["/.*/"]}, {"block_senders": ["a b@c.example"]}, {"block_senders": ["x@-y.example"]},
    {"allow_senders": ["a@b.example"], "block_senders": ["A@b.example"]},
])
def test_bad_settings_are_refused_naming_the_field(body):
    with pytest.raises(ApiError) as e:
        spam.merge(spam.DEFAULTS, body)
    assert e.value.status == 400 and e.value.code == "invalid_field"
    assert any(field in e.value.detail for field in body), e.value.detail


def test_map_rules_by_priority():
    s = spam.merge(spam.DEFAULTS, {"junk_score": 4, "greylisting": True, "allow_senders": ["@friend.example"],
                                   "block_senders": ["spam@bad.example"]})
    rules = spam.rules([(7, "client.example", s)])
    json.dumps(rules)   # what Rspamd reads
    assert rules["emboux_outbound"]["authenticated"] is True and rules["emboux_outbound"]["priority"] == 20
    dom = rules["emboux_7"]
    assert dom["rcpt"] == "@client.example" and dom["priority"] == 5
    assert dom["apply"]["actions"]["add header"] == 4 and dom["apply"]["emboux_greylisting"] is True
    assert rules["emboux_7_block"]["priority"] > rules["emboux_7_allow"]["priority"] > dom["priority"]
    assert rules["emboux_7_block"]["apply"]["symbols"] == {"EMBOUX_BLOCKLISTED": spam.BLOCK_SCORE}
    assert rules["emboux_7_block_hdr"]["from_mime"] == ["spam@bad.example"]
    assert rules["emboux_7_allow"]["from"] == ["@friend.example"]
    # no greylisting unless asked; no list rules for empty lists
    plain = spam.rules([(8, "other.example", spam.DEFAULTS)])
    assert plain["emboux_8"]["apply"]["emboux_greylisting"] is False
    assert plain["emboux_8"]["apply"]["actions"]["greylist"] is None
    assert "emboux_8_block" not in plain and "emboux_8_allow" not in plain
