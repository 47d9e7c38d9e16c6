-- Queries that more than one service runs, loaded by jobdeck.sql (SHARED).

-- name: known_queues
-- Every queue that has a recorded job: a loose index scan over the (queue, ...) index, one
-- probe per distinct queue, instead of a DISTINCT over every row.
WITH RECURSIVE q(queue) AS (
    (SELECT queue FROM jobs ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM jobs j WHERE j.queue > q.queue ORDER BY j.queue LIMIT 1)
    FROM q
    WHERE q.queue IS NOT NULL
)
SELECT queue FROM q WHERE queue IS NOT NULL;

-- name: active_counts
-- Running jobs per queue as recorded (jobs_live_queue_idx): what "active" means for a queue
-- no live worker reports (see jobdeck.depth).
SELECT queue, count(*)::bigint AS n
FROM jobs
WHERE status = 'active'
GROUP BY queue;
