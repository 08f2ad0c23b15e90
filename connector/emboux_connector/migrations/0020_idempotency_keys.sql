-- Idempotency keys (issue 14, seed 004's POST /mailboxes): the first answer
-- to a request carrying `Idempotency-Key` is kept, and a retry with the same
-- key (from the same caller, on the same operation) gets that answer again,
-- whatever its body, without doing anything. Keys expire after a day
-- (idempotency.py removes expired ones as it goes).

CREATE TABLE idempotency_keys (
    id            bigserial PRIMARY KEY,
    caller_scope  text NOT NULL,      -- the partner_ref, or 'master' for the master token
    operation     text NOT NULL,      -- e.g. 'POST /mailboxes'
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256 text NOT NULL,     -- the first request's body: a different retry is reported, not run
    status        integer NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (caller_scope, operation, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
