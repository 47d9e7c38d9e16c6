-- jobdeck: no-transaction
-- analytics (issue 9): the retry rules look up, for each sampled failed attempt, whether
-- its job ran again and how it ended. Only jobs that needed more than one attempt can
-- answer yes, so a partial index of those holding both answers (an index-only probe into a
-- small index) replaces a read of a `jobs` heap page per sampled attempt — pages spread
-- over the whole table when the jobs that failed were enqueued long before. Built
-- CONCURRENTLY (outside a transaction: see jobdeck.db); a failed build leaves an INVALID
-- index behind, dropped first when this file runs again.
DROP INDEX CONCURRENTLY IF EXISTS jobs_retried_idx;
CREATE INDEX CONCURRENTLY jobs_retried_idx ON jobs (id) INCLUDE (attempts, status)
    WHERE attempts > 1;
