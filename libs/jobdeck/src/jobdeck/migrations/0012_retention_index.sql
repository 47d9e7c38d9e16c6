-- jobdeck: no-transaction
-- retention (issue 12): the pruner reads, per queue and final status, the jobs that finished
-- longest ago. Built CONCURRENTLY (outside a transaction: see jobdeck.db) so that a jobs
-- table of many millions of rows keeps taking writes while it builds. A failed concurrent
-- build leaves an INVALID index behind; this file runs again from the top after a failure,
-- so that index is dropped first.
DROP INDEX CONCURRENTLY IF EXISTS jobs_retention_idx;
CREATE INDEX CONCURRENTLY jobs_retention_idx ON jobs (queue, status, finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
