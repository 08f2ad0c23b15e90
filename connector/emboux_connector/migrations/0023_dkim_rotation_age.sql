-- Issue 11: an optional automatic DKIM rotation age per domain (local
-- provider). The scheduler's clean-dkim job rotates a domain's active key
-- once it is older than this many days (0 = never: rotation stays manual,
-- POST /domains/{name}/dkim/rotate), retires keys past their overlap and
-- deletes retired keys, private key included.
ALTER TABLE domains
    ADD COLUMN IF NOT EXISTS dkim_rotation_days integer NOT NULL DEFAULT 0
        CHECK (dkim_rotation_days BETWEEN 0 AND 3650);
