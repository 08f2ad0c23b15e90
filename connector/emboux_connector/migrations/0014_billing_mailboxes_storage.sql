-- Billing from measured usage (issue 12): the monthly freeze
-- (POST /outbound/reset-monthly) also records, per domain, how many
-- mailboxes it had and the bytes they stored (Dovecot's own quota
-- accounting, `doveadm quota get -A`, read once per freeze), so that an
-- invoice bills mailboxes and storage from the platform's counters of a
-- closed month, not from what the biller counts later.
--
-- NULL = not measured: rows frozen before this migration, and storage when
-- Dovecot could not be asked at freeze time (the biller then falls back to
-- its own count). Existing rows keep working unchanged.

ALTER TABLE outbound_billing
    ADD COLUMN mailboxes integer CHECK (mailboxes >= 0),
    ADD COLUMN storage_bytes bigint CHECK (storage_bytes >= 0);
