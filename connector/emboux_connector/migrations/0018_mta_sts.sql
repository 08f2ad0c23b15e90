-- MTA-STS (RFC 8461) per domain (issue 14): the mode a tenant chose through
-- PUT /domains/{name}/mta-sts. No row: the domain publishes no policy (the
-- policy URL answers 404, dns-check lists the records as optional).
--
-- The policy id published in `_mta-sts.<domain>` TXT is not stored: it is
-- derived from the policy text the connector serves (mtasts.py), so it changes
-- exactly when the policy does -- the mode, max_age, or the MX host of the
-- deployment -- and can never disagree with what is served.

CREATE TABLE domain_mta_sts (
    domain_id   bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    mode        text NOT NULL CHECK (mode IN ('none', 'testing', 'enforce')),
    -- seconds senders cache the policy; RFC 8461 caps it at 31557600 (a year)
    max_age     integer NOT NULL DEFAULT 604800 CHECK (max_age BETWEEN 86400 AND 31557600),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
