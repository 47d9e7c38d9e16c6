-- jobdeck: no-transaction
-- job_logs becomes partitioned by month of `ts` in 0014 (retention then drops whole months);
-- this file prepares the existing table so that 0014 holds its lock for milliseconds, not
-- for a scan or an index build. Each step keeps the table taking writes:
-- 1. the unique index the partitioned table's key needs, built CONCURRENTLY (a failed build
--    leaves an INVALID index: dropped first when this file runs again);
-- 2. a CHECK that every line is older than the start of the month after next, added NOT
--    VALID (a brief lock), then validated (a scan that lets reads and writes through), so
--    that attaching the table as the partition of everything before that bound needs no
--    scan of its own.
DROP INDEX CONCURRENTLY IF EXISTS job_logs_line_idx;
CREATE UNIQUE INDEX CONCURRENTLY job_logs_line_idx ON job_logs (job_id, attempt, seq, ts);
-- The brief exclusive locks give up after 10 s rather than queue behind a long query (and
-- hold up everyone queued behind them); `make migrate` again then.
SET lock_timeout = '10s';
ALTER TABLE job_logs DROP CONSTRAINT IF EXISTS job_logs_before_partitions;
DO $$ BEGIN EXECUTE format('ALTER TABLE job_logs ADD CONSTRAINT job_logs_before_partitions CHECK (ts < %L) NOT VALID', date_trunc('month', now(), 'UTC') + interval '2 months'); END $$;
RESET lock_timeout;
ALTER TABLE job_logs VALIDATE CONSTRAINT job_logs_before_partitions;
