"""The feeds' horizon (connector/emboux_connector/api/feeds.py): a running
transaction's 32-bit id from pg_stat_activity, widened to 64 bits around the
next id. A transaction that got its id just after the next id was read lies
above it, not 4 billion ids below (which stalled a pull mid-feed)."""

from emboux_connector.api.feeds import widen

EPOCH = 3 << 32


def test_a_running_transaction_below_the_next_id():
    assert widen(EPOCH + 1000, 900) == EPOCH + 900


def test_one_that_started_after_the_next_id_was_read_is_above_it():
    assert widen(EPOCH + 1000, 1005) == EPOCH + 1005


def test_across_the_32_bit_wrap():
    assert widen(EPOCH + 5, 0xFFFFFFF0) == EPOCH - 16      # 21 below, in the previous epoch
    assert widen(EPOCH - 3, 2) == EPOCH + 2               # 5 above, in the next epoch
