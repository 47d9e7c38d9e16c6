-- Analytics reads: rollup rows only (see migrations/0008_analytics.sql), never `jobs`.
-- Common parameters: $1 level, $2 start, $3 end (exclusive), $4 queues (NULL: all),
-- $5 job name (NULL: all). Every query is one range scan of the rollups' primary key.

-- name: status_buckets
-- Finished jobs per bucket ($6: the interval, for 15-minute buckets of minute rows),
-- queue and status.
SELECT date_bin($6::interval, bucket, '1970-01-01T00:00:00Z'::timestamptz) AS start,
       queue, status, sum(jobs)::bigint AS jobs
FROM job_rollups
WHERE level = $1 AND bucket >= $2 AND bucket < $3
  AND ($4::text[] IS NULL OR queue = ANY($4::text[]))
  AND ($5::text IS NULL OR name = $5::text)
GROUP BY 1, 2, 3
HAVING sum(jobs) <> 0;

-- name: totals
-- Per queue, job name and status over the range.
SELECT queue, name, status,
       sum(jobs)::bigint AS jobs, sum(retried)::bigint AS retried,
       sum(timed)::bigint AS timed, sum(duration_sum)::bigint AS duration_sum,
       min(duration_min) AS duration_min, max(duration_max) AS duration_max,
       sum(waited)::bigint AS waited, sum(wait_sum)::bigint AS wait_sum
FROM job_rollups
WHERE level = $1 AND bucket >= $2 AND bucket < $3
  AND ($4::text[] IS NULL OR queue = ANY($4::text[]))
  AND ($5::text IS NULL OR name = $5::text)
GROUP BY 1, 2, 3;

-- name: histograms
-- Duration ('d') and wait ('w') histograms per queue and job name, summed over the range,
-- each as one jsonb object {bucket: count}.
SELECT queue, name, kind, jsonb_object_agg(idx, n) AS hist
FROM (
    SELECT r.queue, r.name, 'd' AS kind, h.key AS idx, sum(h.value::text::bigint) AS n
    FROM job_rollups r, jsonb_each(r.duration_hist) h
    WHERE r.level = $1 AND r.bucket >= $2 AND r.bucket < $3
      AND ($4::text[] IS NULL OR r.queue = ANY($4::text[]))
      AND ($5::text IS NULL OR r.name = $5::text)
    GROUP BY 1, 2, 4
    UNION ALL
    SELECT r.queue, r.name, 'w', h.key, sum(h.value::text::bigint)
    FROM job_rollups r, jsonb_each(r.wait_hist) h
    WHERE r.level = $1 AND r.bucket >= $2 AND r.bucket < $3
      AND ($4::text[] IS NULL OR r.queue = ANY($4::text[]))
      AND ($5::text IS NULL OR r.name = $5::text)
    GROUP BY 1, 2, 4
) AS summed
GROUP BY queue, name, kind;

-- name: fingerprints
-- The most frequent failure fingerprints of the range ($6: how many).
SELECT fingerprint,
       min(error_type) AS error_type,
       min(pattern) AS pattern,
       sum(failures)::bigint AS count,
       min(first_seen) AS first_seen,
       max(last_seen) AS last_seen,
       array_agg(DISTINCT queue ORDER BY queue) AS queues,
       array_agg(DISTINCT name ORDER BY name) AS job_names,
       (array_agg(sample_job_id ORDER BY last_seen DESC))[1] AS sample_job_id,
       (array_agg(sample_message ORDER BY last_seen DESC))[1] AS sample_message
FROM job_failure_rollups
WHERE level = $1 AND bucket >= $2 AND bucket < $3
  AND ($4::text[] IS NULL OR queue = ANY($4::text[]))
  AND ($5::text IS NULL OR name = $5::text)
GROUP BY fingerprint
HAVING sum(failures) > 0
ORDER BY count DESC, fingerprint
LIMIT $6;

-- name: fingerprint_by_task
-- Failures per (queue, job name, error type) over the range: what the timeout rule reads.
SELECT queue, name, error_type, sum(failures)::bigint AS failures,
       (array_agg(sample_job_id ORDER BY last_seen DESC))[1] AS sample_job_id
FROM job_failure_rollups
WHERE level = $1 AND bucket >= $2 AND bucket < $3
  AND ($4::text[] IS NULL OR queue = ANY($4::text[]))
  AND ($5::text IS NULL OR name = $5::text)
GROUP BY 1, 2, 3
HAVING sum(failures) > 0;

-- name: retry_outcomes
-- For fingerprints $5: failed attempts in [$1, $2) that were followed by another attempt,
-- and how many of those jobs completed in the end ($3 queues, $4 job name as above).
SELECT f.fingerprint,
       count(*) FILTER (WHERE j.attempts > f.attempt)::bigint AS retried,
       count(*) FILTER (WHERE j.attempts > f.attempt AND j.status = 'completed')::bigint
           AS recovered
FROM job_attempt_failures f
JOIN jobs j ON j.id = f.job_id
WHERE f.fingerprint = ANY($5::text[])
  AND f.failed_at >= $1 AND f.failed_at < $2
  AND ($3::text[] IS NULL OR f.queue = ANY($3::text[]))
  AND ($4::text IS NULL OR f.name = $4::text)
GROUP BY f.fingerprint;

-- name: job_timeouts
-- The timeout the sample jobs ran with (seconds, from their options), by job id.
SELECT id, queue, (options->>'timeout_s')::float8 AS timeout_s
FROM jobs
WHERE id = ANY($1::text[]) AND jsonb_typeof(options->'timeout_s') = 'number';

-- name: queue_timeouts
SELECT queue, timeout_s::float8 AS timeout_s FROM job_queue_configs WHERE queue = ANY($1::text[]);
