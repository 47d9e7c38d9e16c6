-- Analytics reads: rollup rows only (see migrations/0008_analytics.sql), never `jobs`.
-- Range queries take the window's tiles ($1 levels, $2 starts, $3 ends: whole days from
-- the day rows, whole hours from the hour rows, the rest from the minute rows; see
-- analytics_range.tile), then $4 queues (NULL: all) and $5 job name (NULL: all). Each tile
-- is one range scan of the rollups' primary key: a LATERAL subquery per tile, with OFFSET 0
-- so that the planner does not flatten it into a hash join over the whole table.

-- name: status_buckets
-- Finished jobs per bucket, queue and status, from the interval's own level: $1 level,
-- $2 start, $3 end, $4 queues, $5 job name, $6 the interval (15-minute buckets of minute
-- rows).
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
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(level, lo, hi)
CROSS JOIN LATERAL (
    SELECT * FROM job_rollups x
    WHERE x.level = t.level AND x.bucket >= t.lo AND x.bucket < t.hi
      AND ($4::text[] IS NULL OR x.queue = ANY($4::text[]))
      AND ($5::text IS NULL OR x.name = $5::text)
    OFFSET 0
) AS r
GROUP BY 1, 2, 3;

-- name: histograms
-- Duration ('d') and wait ('w') histograms per queue and job name, summed over the range
-- (job_histograms: already summed over status), each as one jsonb object {bucket: count};
-- $6/$7, when not NULL, the only (queue, job name) pairs wanted; $8 the kind ('d' or 'w').
SELECT queue, name, kind, jsonb_object_agg(idx, n) AS hist
FROM (
    SELECT r.queue, r.name, k.kind, h.key AS idx, sum(h.value::bigint) AS n
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(level, lo, hi)
    CROSS JOIN LATERAL (
        SELECT * FROM job_histograms x
        WHERE x.level = t.level AND x.bucket >= t.lo AND x.bucket < t.hi
          AND ($4::text[] IS NULL OR x.queue = ANY($4::text[]))
          AND ($5::text IS NULL OR x.name = $5::text)
          AND ($6::text[] IS NULL
               OR (x.queue, x.name) IN (SELECT * FROM unnest($6::text[], $7::text[])))
        OFFSET 0
    ) AS r
    CROSS JOIN LATERAL (VALUES ('d', r.duration_hist), ('w', r.wait_hist)) AS k(kind, hist)
    CROSS JOIN jsonb_each_text(k.hist) h
    WHERE k.kind = $8::text
    GROUP BY 1, 2, 3, 4
    HAVING sum(h.value::bigint) <> 0
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
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(level, lo, hi)
CROSS JOIN LATERAL (
    SELECT * FROM job_failure_rollups x
    WHERE x.level = t.level AND x.bucket >= t.lo AND x.bucket < t.hi
      AND ($4::text[] IS NULL OR x.queue = ANY($4::text[]))
      AND ($5::text IS NULL OR x.name = $5::text)
    OFFSET 0
) AS r
GROUP BY fingerprint
HAVING sum(failures) > 0
ORDER BY count DESC, fingerprint
LIMIT $6;

-- name: fingerprint_by_task
-- Failures per (queue, job name, error type) over the range: what the timeout rule reads.
SELECT queue, name, error_type, sum(failures)::bigint AS failures,
       (array_agg(sample_job_id ORDER BY last_seen DESC))[1] AS sample_job_id
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(level, lo, hi)
CROSS JOIN LATERAL (
    SELECT * FROM job_failure_rollups x
    WHERE x.level = t.level AND x.bucket >= t.lo AND x.bucket < t.hi
      AND ($4::text[] IS NULL OR x.queue = ANY($4::text[]))
      AND ($5::text IS NULL OR x.name = $5::text)
    OFFSET 0
) AS r
GROUP BY 1, 2, 3
HAVING sum(failures) > 0;

-- name: retry_outcomes
-- For each fingerprint of $5: of its latest $6 failed attempts in [$1, $2), those followed
-- by another attempt, and how many of those jobs completed in the end ($3 queues, $4 job
-- name as above). The cap keeps this a few index probes per fingerprint however long the
-- window (job_attempt_failures_fp_idx, newest first).
SELECT p.fingerprint,
       count(*) FILTER (WHERE a.attempts > a.attempt)::bigint AS retried,
       count(*) FILTER (WHERE a.attempts > a.attempt AND a.status = 'completed')::bigint
           AS recovered
FROM unnest($5::text[]) AS p(fingerprint)
CROSS JOIN LATERAL (
    SELECT f.attempt, j.attempts, j.status
    FROM job_attempt_failures f
    JOIN jobs j ON j.id = f.job_id
    WHERE f.fingerprint = p.fingerprint
      AND f.failed_at >= $1 AND f.failed_at < $2
      AND ($3::text[] IS NULL OR f.queue = ANY($3::text[]))
      AND ($4::text IS NULL OR f.name = $4::text)
    ORDER BY f.failed_at DESC
    LIMIT $6
) AS a
GROUP BY p.fingerprint;

-- name: job_timeouts
-- The timeout the sample jobs ran with (seconds, from their options), by job id.
SELECT id, queue, (options->>'timeout_s')::float8 AS timeout_s
FROM jobs
WHERE id = ANY($1::text[]) AND jsonb_typeof(options->'timeout_s') = 'number';

-- name: queue_timeouts
SELECT queue, timeout_s::float8 AS timeout_s FROM job_queue_configs WHERE queue = ANY($1::text[]);
