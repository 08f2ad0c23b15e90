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


def test_map_is_one_entry_per_domain():
    s = spam.merge(spam.DEFAULTS, {"junk_score": 4, "greylisting": True, "allow_senders": ["@friend.example"],
                                   "block_senders": ["spam@bad.example"]})
    table = spam.domain_table([("client.example", s), ("other.example", spam.DEFAULTS)])
    json.dumps(table)   # what Rspamd reads (rspamd.local.lua)
    assert table["outbound"]["actions"]["reject"] == spam.DEFAULTS["reject_score"]
    assert table["outbound"]["actions"]["add header"] is None and table["outbound"]["emboux_greylisting"] is False
    dom = table["domains"]["client.example"]
    assert dom["apply"]["actions"]["add header"] == 4 and dom["apply"]["emboux_greylisting"] is True
    assert dom["apply"]["actions"]["greylist"] == spam.GREYLIST_SCORE
    assert dom["apply_block"]["symbols"] == {"EMBOUX_BLOCKLISTED": spam.BLOCK_SCORE}
    assert dom["apply_allow"]["symbols"] == {"EMBOUX_ALLOWLISTED": spam.ALLOW_SCORE}
    assert dom["apply_block"]["actions"] == dom["apply"]["actions"]      # the domain's thresholds still apply
    assert dom["block_senders"] == ["spam@bad.example"] and dom["allow_senders"] == ["@friend.example"]
    # no greylisting unless asked; nothing for empty lists
    plain = table["domains"]["other.example"]
    assert plain["apply"]["emboux_greylisting"] is False and plain["apply"]["actions"]["greylist"] is None
    assert set(plain) == {"apply"}
