-- DMARC aggregate report ingestion (issue 14, docs/reports.md). Reports are
-- mailed to the platform's report address (DMARC_REPORT_ADDRESS); Postfix
-- hands them over LMTP to `emboux-connector reports-lmtp`, which parses them
-- (parsedmarc, bounded sizes, no XML entities) and stores them here for
-- hosted domains only. GET /domains/{name}/dmarc summarises them.

-- Every report mail received, stored or not: a rejection is recorded here and
-- nothing else is written (the mail itself is accepted, never bounced: a bounce
-- to a reporting robot would only loop).
CREATE TABLE report_intake (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    recipient    text NOT NULL,
    sender       text,
    size_bytes   bigint NOT NULL,
    kind         text CHECK (kind IN ('aggregate', 'smtp_tls', 'forensic')),
    status       text NOT NULL CHECK (status IN ('stored', 'duplicate', 'rejected', 'ignored')),
    -- why it was rejected or ignored: too_large, too_large_decompressed,
    -- xml_entities, malformed, domain_not_hosted, forensic_not_stored
    reason       text,
    detail       text,
    -- the domain(s) the report was about, as the report names them
    domains      text[] NOT NULL DEFAULT '{}',
    org_name     text,
    report_id    text
);
CREATE INDEX report_intake_received ON report_intake (received_at);

CREATE TABLE dmarc_reports (
    id           bigserial PRIMARY KEY,
    domain_id    bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    intake_id    bigint REFERENCES report_intake (id) ON DELETE SET NULL,
    org_name     text NOT NULL,
    org_email    text,
    report_id    text NOT NULL,
    begin_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    -- the policy the reporter saw published (p, sp, pct, adkim, aspf)
    policy       jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- a reporter resending the same report counts once
    UNIQUE (domain_id, org_name, report_id)
);
CREATE INDEX dmarc_reports_domain_begin ON dmarc_reports (domain_id, begin_at);

CREATE TABLE dmarc_records (
    report_id     bigint NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    source_ip     inet NOT NULL,
    -- the sending service as parsedmarc names it (its bundled IP/ASN data), else the AS name
    provider      text,
    messages      integer NOT NULL CHECK (messages >= 0),
    disposition   text NOT NULL,
    spf_aligned   boolean NOT NULL,
    dkim_aligned  boolean NOT NULL,
    dmarc_aligned boolean NOT NULL,
    header_from   text,
    envelope_from text
);
CREATE INDEX dmarc_records_report ON dmarc_records (report_id);
