-- Seed 002's Basic JSON API (docs/api.md, "Migrating from the seed 002
-- controller"): a tenant's HTTPS document of accounts and aliases, pulled on a
-- schedule and on demand, and every run's record. The connector alone reads
-- and writes these tables: no mail server sees them (no mailserver view).

CREATE TABLE json_pull_sources (
    partner_ref       text PRIMARY KEY REFERENCES partners (partner_ref) ON DELETE CASCADE,
    url               text NOT NULL CHECK (url LIKE 'https://%' AND length(url) <= 2000),
    interval_minutes  integer NOT NULL DEFAULT 60 CHECK (interval_minutes BETWEEN 5 AND 1440),
    enabled           boolean NOT NULL DEFAULT true,
    next_pull_at      timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX json_pull_sources_due_idx ON json_pull_sources (next_pull_at) WHERE enabled;

-- One row per pull, applied or not: what it created, changed and removed
-- (addresses), the hashes it took that are weak, and why it was rejected.
CREATE TABLE json_pull_runs (
    id              bigserial PRIMARY KEY,
    partner_ref     text NOT NULL REFERENCES partners (partner_ref) ON DELETE CASCADE,
    url             text NOT NULL,
    trigger         text NOT NULL CHECK (trigger IN ('schedule', 'demand')),
    status          text NOT NULL CHECK (status IN ('applied', 'rejected')),
    reason          text,                      -- why it was rejected (null when applied)
    document_sha256 text,
    document_bytes  integer,
    created         jsonb NOT NULL DEFAULT '[]',
    changed         jsonb NOT NULL DEFAULT '[]',
    removed         jsonb NOT NULL DEFAULT '[]',
    warnings        jsonb NOT NULL DEFAULT '[]',
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX json_pull_runs_partner_idx ON json_pull_runs (partner_ref, id DESC);
