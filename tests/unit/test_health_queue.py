"""GET /health's Postfix queue depth (api/health.py): files under the queue
directory's active/ and deferred/ (Postfix hashes them into subdirectories)."""

from emboux_connector.api import health


def test_counts_active_and_deferred_messages(tmp_path, monkeypatch):
    for name in ("active", "deferred/A/B", "deferred/C", "incoming", "hold"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "active" / "4XYZ1").write_text("m")
    for i, sub in enumerate(("deferred/A/B", "deferred/A/B", "deferred/C")):
        (tmp_path / sub / f"5Q{i}").write_text("m")
    (tmp_path / "incoming" / "6IN").write_text("m")      # neither active nor deferred
    (tmp_path / "hold" / "7HOLD").write_text("m")
    monkeypatch.setenv("POSTFIX_QUEUE_DIR", str(tmp_path))
    assert health._queue() == {"queue": {"ok": True, "active": 1, "deferred": 3}}


def test_a_wrong_queue_directory_is_reported_not_counted_as_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTFIX_QUEUE_DIR", str(tmp_path / "nowhere"))
    q = health._queue()["queue"]
    assert q["ok"] is False and "POSTFIX_QUEUE_DIR" in q["detail"]


def test_not_reported_when_unset(monkeypatch):
    monkeypatch.delenv("POSTFIX_QUEUE_DIR", raising=False)
    assert health._queue() == {}
