-- job_logs partitioned by month of `ts` (issue 12): retention drops a whole month of log
-- lines once it is past every queue's log retention, instead of deleting them row by row.
-- The existing table (prepared by 0013: its unique index and a validated CHECK) becomes
-- the partition `job_logs_legacy` of everything before the bound of that CHECK, so this
-- transaction scans nothing and builds nothing: its locks last milliseconds, and it gives
-- up rather than queue behind a long query (lock_timeout; run `make migrate` again).
-- Monthly partitions `job_logs_YYYY_MM` follow; the recorder's pruner keeps 3 months ahead
-- created and drops the old ones (jobdeck_ensure_log_partitions, jobdeck_drop_log_partitions).
-- `job_logs_default` holds what no month covers (a worker whose clock is months ahead).
-- A line's key is (job_id, attempt, seq, ts): the partition key must be part of it; an
-- event delivered again carries the same ts, so the recorder's ON CONFLICT still holds.
SET LOCAL lock_timeout = '10s';

-- Every partition of job_logs with its range (NULL: unbounded, or the default partition).
CREATE OR REPLACE FUNCTION jobdeck_log_partitions()
RETURNS TABLE (name text, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'job_logs'::regclass
$$;

-- Create the monthly partitions from the current month to `ahead` months on that do not
-- exist yet (months the legacy partition covers are skipped); returns how many were made.
CREATE OR REPLACE FUNCTION jobdeck_ensure_log_partitions(ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month timestamptz := date_trunc('month', now(), 'UTC');
    last_month timestamptz := date_trunc('month', now(), 'UTC') + make_interval(months => ahead);
    covered timestamptz;
    part text;
    made integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '2s', true);
    SELECT max(upper_bound) INTO covered FROM jobdeck_log_partitions();
    IF covered IS NOT NULL AND covered > month THEN
        month := covered;
    END IF;
    WHILE month <= last_month LOOP
        part := 'job_logs_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF job_logs FOR VALUES FROM (%L) TO (%L)',
                           part, month, month + interval '1 month');
            made := made + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN made;
END $$;

-- Drop every partition whose range ends at or before `older_than`; returns their names.
CREATE OR REPLACE FUNCTION jobdeck_drop_log_partitions(older_than timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM set_config('lock_timeout', '2s', true);
    FOR part IN
        SELECT name FROM jobdeck_log_partitions()
        WHERE upper_bound <= older_than ORDER BY upper_bound
    LOOP
        EXECUTE format('DROP TABLE %I', part.name);
        RETURN NEXT part.name;
    END LOOP;
END $$;

DO $$
DECLARE
    bound timestamptz;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'job_logs'::regclass) <> 'r' THEN
        RETURN;  -- partitioned already
    END IF;
    SELECT substring(pg_get_constraintdef(oid) FROM '''([^'']+)''')::timestamptz INTO bound
    FROM pg_constraint
    WHERE conname = 'job_logs_before_partitions' AND conrelid = 'job_logs'::regclass;
    -- The key with ts (0013's index) replaces the old one: no scan, the columns are NOT NULL.
    ALTER TABLE job_logs DROP CONSTRAINT job_logs_pkey;
    ALTER TABLE job_logs ADD CONSTRAINT job_logs_legacy_pkey PRIMARY KEY USING INDEX job_logs_line_idx;
    ALTER TABLE job_logs RENAME TO job_logs_legacy;
    CREATE TABLE job_logs (
        LIKE job_logs_legacy INCLUDING DEFAULTS,
        PRIMARY KEY (job_id, attempt, seq, ts)
    ) PARTITION BY RANGE (ts);
    EXECUTE format(
        'ALTER TABLE job_logs ATTACH PARTITION job_logs_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
        bound);
    CREATE TABLE job_logs_default PARTITION OF job_logs DEFAULT;
END $$;

SELECT jobdeck_ensure_log_partitions(3);
