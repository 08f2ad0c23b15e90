-- SMTP TLS reports (TLS-RPT, RFC 8460; issue 14, docs/reports.md): mailed to
-- the address of TLSRPT_RUA, ingested like the DMARC reports (0025), one row
-- per policy a report covers, for hosted domains only. GET
-- /domains/{name}/tls-reports lists them.

CREATE TABLE tls_reports (
    id                  bigserial PRIMARY KEY,
    domain_id           bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    intake_id           bigint REFERENCES report_intake (id) ON DELETE SET NULL,
    org_name            text NOT NULL,
    report_id           text NOT NULL,
    begin_at            timestamptz NOT NULL,
    end_at              timestamptz NOT NULL,
    policy_type         text NOT NULL,          -- sts, tlsa, no-policy-found
    policy_strings      jsonb NOT NULL DEFAULT '[]',
    successful_sessions bigint NOT NULL CHECK (successful_sessions >= 0),
    failed_sessions     bigint NOT NULL CHECK (failed_sessions >= 0),
    failure_details     jsonb NOT NULL DEFAULT '[]',
    received_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, org_name, report_id, policy_type)
);
CREATE INDEX tls_reports_domain_begin ON tls_reports (domain_id, begin_at);
