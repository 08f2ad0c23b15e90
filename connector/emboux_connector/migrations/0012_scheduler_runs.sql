-- The scheduler's record (issue 13): per job, the period it last completed
-- and when, and its last failure. `emboux-connector scheduler` runs a job
-- when the period it is due for (a day, a month, an hour...) differs from
-- `period` here; GET /health reports these rows. The jobs themselves are
-- idempotent per period, so a crash between a job's commit and this row's
-- update only makes the job run once more, harmlessly.
CREATE TABLE scheduler_runs (
    job             text PRIMARY KEY,
    period          text,                   -- the period of the last success
    last_success_at timestamptz,
    last_result     jsonb,
    last_error      text,
    last_error_at   timestamptz,
    runs            bigint NOT NULL DEFAULT 0
);
