-- Exports (issue 10): NDJSON as a format, what the exporter needs to run an export once
-- across replicas (owner and lease), progress, the caller's queue scope, and the file.
ALTER TABLE exports DROP CONSTRAINT IF EXISTS exports_format_check;
ALTER TABLE exports ADD CONSTRAINT exports_format_check
    CHECK (format IN ('csv', 'json', 'ndjson', 'excel'));

ALTER TABLE exports
    ADD COLUMN IF NOT EXISTS scope          text[],          -- the token's queues; NULL = all
    ADD COLUMN IF NOT EXISTS sort_by        text NOT NULL DEFAULT 'createdAt',
    ADD COLUMN IF NOT EXISTS sort_order     text NOT NULL DEFAULT 'desc',
    ADD COLUMN IF NOT EXISTS filename       text,
    ADD COLUMN IF NOT EXISTS rows_done      bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS rows_estimated bigint,
    ADD COLUMN IF NOT EXISTS owner          text,
    ADD COLUMN IF NOT EXISTS lease_until    timestamptz,
    ADD COLUMN IF NOT EXISTS attempts       integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS started_at     timestamptz,
    ADD COLUMN IF NOT EXISTS url            text,
    ADD COLUMN IF NOT EXISTS request_id     text;

-- The janitor's scans: running exports whose lease ran out, and expired exports.
CREATE INDEX IF NOT EXISTS exports_running_lease_idx ON exports (lease_until)
    WHERE status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS exports_expires_idx ON exports (expires_at)
    WHERE expires_at IS NOT NULL;
-- The throttle: exports still in flight per caller.
CREATE INDEX IF NOT EXISTS exports_in_flight_idx ON exports (requested_by)
    WHERE status IN ('pending', 'running');
