-- BIMI logos (issue 14): one SVG Tiny PS logo per domain, uploaded by its
-- tenant (PUT /domains/{name}/bimi), validated by bimi.py before it is
-- stored, served publicly at /bimi/<domain>/logo.svg. The size bound repeats
-- the validator's (32 KB, the BIMI draft's recommendation) so that nothing
-- larger is ever stored, whatever writes the row.

CREATE TABLE domain_bimi_logos (
    domain_id    bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    svg          bytea NOT NULL CHECK (octet_length(svg) BETWEEN 1 AND 32768),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
