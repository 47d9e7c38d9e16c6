-- Analytics rollups, written by the recorder in the transaction of the batch whose job
-- rows they summarise (see rollup.py). Deltas travel as one JSON array; times as epoch ms.
-- Rows are upserted in key order, so two recorders never lock them in opposite orders.

-- name: upsert_rollups
INSERT INTO job_rollups AS r (
    level, bucket, queue, name, status, jobs, retried, timed, duration_sum, duration_min,
    duration_max, waited, wait_sum
)
SELECT s.level, to_timestamp(s.bucket / 1000.0), s.queue, s.name, s.status, s.jobs,
       s.retried, s.timed, s.duration_sum, s.duration_min, s.duration_max, s.waited,
       s.wait_sum
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    level text, bucket bigint, queue text, name text, status text, jobs bigint,
    retried bigint, timed bigint, duration_sum bigint, duration_min bigint,
    duration_max bigint, waited bigint, wait_sum bigint
)
ORDER BY s.level, s.bucket, s.queue, s.name, s.status
ON CONFLICT (level, bucket, queue, name, status) DO UPDATE SET
    jobs = r.jobs + excluded.jobs,
    retried = r.retried + excluded.retried,
    timed = r.timed + excluded.timed,
    duration_sum = r.duration_sum + excluded.duration_sum,
    duration_min = least(r.duration_min, excluded.duration_min),
    duration_max = greatest(r.duration_max, excluded.duration_max),
    waited = r.waited + excluded.waited,
    wait_sum = r.wait_sum + excluded.wait_sum;

-- name: upsert_histograms
INSERT INTO job_histograms AS r (level, bucket, queue, name, duration_hist, wait_hist)
SELECT s.level, to_timestamp(s.bucket / 1000.0), s.queue, s.name,
       coalesce(s.duration_hist, '{}'), coalesce(s.wait_hist, '{}')
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    level text, bucket bigint, queue text, name text, duration_hist jsonb, wait_hist jsonb
)
ORDER BY s.level, s.bucket, s.queue, s.name
ON CONFLICT (level, bucket, queue, name) DO UPDATE SET
    duration_hist = jobdeck_hist_add(r.duration_hist, excluded.duration_hist),
    wait_hist = jobdeck_hist_add(r.wait_hist, excluded.wait_hist);

-- name: recompute_extremes
-- Rows that lost a duration equal to their min or max: recompute both from the jobs of
-- the bucket (jobs_final_finished_idx: one range scan). Runs after upsert_rollups, whose
-- row locks make a concurrent batch on the same rows wait for this one, or this for it.
UPDATE job_rollups AS r SET duration_min = m.lo, duration_max = m.hi
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    level text, bucket bigint, queue text, name text, status text, width_ms bigint,
    removed_min bigint, removed_max bigint
)
CROSS JOIN LATERAL (
    SELECT min(j.duration_ms) AS lo, max(j.duration_ms) AS hi
    FROM jobs j
    WHERE j.finished_at >= to_timestamp(s.bucket / 1000.0)
      AND j.finished_at < to_timestamp((s.bucket + s.width_ms) / 1000.0)
      AND j.status IN ('completed', 'failed', 'cancelled')
      AND j.queue = s.queue AND j.name = s.name AND j.status = s.status
) AS m
WHERE r.level = s.level AND r.bucket = to_timestamp(s.bucket / 1000.0)
  AND r.queue = s.queue AND r.name = s.name AND r.status = s.status
  AND (r.duration_min IS NULL OR r.duration_min >= s.removed_min
       OR r.duration_max <= s.removed_max);

-- name: upsert_failure_rollups
INSERT INTO job_failure_rollups AS r (
    level, bucket, queue, name, fingerprint, error_type, pattern, failures, first_seen,
    last_seen, sample_job_id, sample_message
)
SELECT s.level, to_timestamp(s.bucket / 1000.0), s.queue, s.name, s.fingerprint,
       s.error_type, s.pattern, s.failures, to_timestamp(s.first_seen / 1000.0),
       to_timestamp(s.last_seen / 1000.0), s.sample_job_id, s.sample_message
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    level text, bucket bigint, queue text, name text, fingerprint text, error_type text,
    pattern text, failures bigint, first_seen bigint, last_seen bigint,
    sample_job_id text, sample_message text
)
ORDER BY s.level, s.bucket, s.queue, s.name, s.fingerprint
ON CONFLICT (level, bucket, queue, name, fingerprint) DO UPDATE SET
    failures = r.failures + excluded.failures,
    first_seen = least(r.first_seen, excluded.first_seen),
    last_seen = greatest(r.last_seen, excluded.last_seen),
    sample_job_id = CASE WHEN excluded.last_seen >= r.last_seen
                         THEN excluded.sample_job_id ELSE r.sample_job_id END,
    sample_message = CASE WHEN excluded.last_seen >= r.last_seen
                          THEN excluded.sample_message ELSE r.sample_message END;

-- name: insert_attempt_failures
INSERT INTO job_attempt_failures (
    job_id, attempt, queue, name, fingerprint, error_type, failed_at
)
SELECT s.job_id, s.attempt, s.queue, s.name, s.fingerprint, s.error_type,
       to_timestamp(s.failed_at / 1000.0)
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    job_id text, attempt int, queue text, name text, fingerprint text, error_type text,
    failed_at bigint
)
ORDER BY s.job_id, s.attempt
ON CONFLICT (job_id, attempt) DO NOTHING;

-- name: prune_rollups
-- At most $3 rollup rows of level $1 older than $2, oldest first (short transactions).
DELETE FROM job_rollups WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM job_rollups WHERE level = $1 AND bucket < $2 LIMIT $3
));

-- name: prune_histograms
DELETE FROM job_histograms WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM job_histograms WHERE level = $1 AND bucket < $2 LIMIT $3
));

-- name: prune_failure_rollups
DELETE FROM job_failure_rollups WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM job_failure_rollups WHERE level = $1 AND bucket < $2 LIMIT $3
));

-- name: prune_attempt_failures
DELETE FROM job_attempt_failures WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM job_attempt_failures WHERE failed_at < $1 LIMIT $2
));

-- name: clear_rollups
-- A rebuild's first step: every rollup row of every level whose bucket is in [$1, $2)
-- (the levels named, so that each delete is a range scan of the primary key).
WITH r AS (
    DELETE FROM job_rollups
    WHERE level IN ('minute', 'hour', 'day') AND bucket >= $1 AND bucket < $2
), h AS (
    DELETE FROM job_histograms
    WHERE level IN ('minute', 'hour', 'day') AND bucket >= $1 AND bucket < $2
)
DELETE FROM job_failure_rollups
WHERE level IN ('minute', 'hour', 'day') AND bucket >= $1 AND bucket < $2;

-- name: final_jobs
-- A rebuild's batch: the next $5 jobs in a final state that finished in [$1, $2), before
-- ($3 finished_at, $4 id), newest first: exactly the order of jobs_finished_idx, so each
-- batch is a range of it (ascending, the planner sorted what a partial index gave it);
-- only the columns a job's contribution reads (rollup.contribution, attempt_failure).
SELECT id, queue, name, status, attempts, error_type, error_message,
       (extract(epoch FROM created_at) * 1000)::bigint AS created_at,
       (extract(epoch FROM run_at) * 1000)::bigint AS run_at,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at,
       (extract(epoch FROM finished_at) * 1000)::bigint AS finished_at,
       duration_ms, finished_at AS finished_ts
FROM jobs
WHERE finished_at >= $1 AND finished_at < $2 AND (finished_at, id) < ($3, $4)
  AND status IN ('completed', 'failed', 'cancelled')
ORDER BY jobs.finished_at DESC NULLS LAST, jobs.id DESC  -- the column, not the ms alias
LIMIT $5;

-- name: final_jobs_unstamped
-- Jobs in a final state without finished_at count at created_at (rollup.contribution).
SELECT id, queue, name, status, attempts, error_type, error_message,
       (extract(epoch FROM created_at) * 1000)::bigint AS created_at,
       (extract(epoch FROM run_at) * 1000)::bigint AS run_at,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at,
       NULL::bigint AS finished_at, duration_ms
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at IS NULL
  AND created_at >= $1 AND created_at < $2;
