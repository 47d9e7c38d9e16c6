-- api: search sorts on the nullable time/duration columns treat NULL (not started, not
-- finished) as the lowest value: `x DESC NULLS LAST` and `x ASC NULLS FIRST`, so one
-- full index per column serves both directions and every status (the partial indexes of
-- 0001 only served queries that also said `x IS NOT NULL`).
DROP INDEX IF EXISTS jobs_duration_idx;
DROP INDEX IF EXISTS jobs_finished_idx;
DROP INDEX IF EXISTS jobs_started_idx;
CREATE INDEX jobs_duration_idx ON jobs (duration_ms DESC NULLS LAST, id DESC);
CREATE INDEX jobs_finished_idx ON jobs (finished_at DESC NULLS LAST, id DESC);
CREATE INDEX jobs_started_idx ON jobs (started_at DESC NULLS LAST, id DESC);
