-- search (issue 12): who lacks a start time, finish time or duration depends on the status
-- (failed jobs have a finish time, waiting ones none). Postgres's per-column statistics
-- treat status and those NULLs as independent; these joint ones let the API's cost guard
-- see that, say, no failed job sits in the block of jobs without a finish time that an
-- ascending finishedAt sort walks first (services/api search_nulls.py). Cheap: an MCV list
-- of a few status x NULL combinations, refreshed by every ANALYZE.
CREATE STATISTICS IF NOT EXISTS jobs_status_nulls (mcv)
    ON status, (started_at IS NULL), (finished_at IS NULL), (duration_ms IS NULL) FROM jobs;
ANALYZE jobs;
