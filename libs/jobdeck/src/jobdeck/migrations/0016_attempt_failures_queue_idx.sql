-- jobdeck: no-transaction
-- analytics (issue 9): the failures report's retry rules read, per fingerprint, its latest
-- failed attempts in a window; with a queue filter, those of each queue newest first (the
-- (fingerprint, failed_at) index alone walks past every other queue's attempts: most of
-- them for a small queue). Built CONCURRENTLY (outside a transaction: see jobdeck.db) so
-- that the recorder keeps writing failed attempts while it builds; a failed build leaves
-- an INVALID index behind, dropped first when this file runs again.
DROP INDEX CONCURRENTLY IF EXISTS job_attempt_failures_fp_queue_idx;
CREATE INDEX CONCURRENTLY job_attempt_failures_fp_queue_idx
    ON job_attempt_failures (fingerprint, queue, failed_at);
