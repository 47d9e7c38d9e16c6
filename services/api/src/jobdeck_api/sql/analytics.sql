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
-- Each row's histogram is expanded by a set-returning function in the select list (one
-- ProjectSet step, no lateral join per row to plan or memoize).
SELECT queue, name, $8::text AS kind, jsonb_object_agg(idx, n) AS hist
FROM (
    SELECT e.queue, e.name, (e.entry).key AS idx, sum((e.entry).value::bigint) AS n
    FROM (
        SELECT r.queue, r.name,
               jsonb_each_text(CASE WHEN $8::text = 'd' THEN r.duration_hist
                                    ELSE r.wait_hist END) AS entry
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
    ) AS e
    GROUP BY 1, 2, 3
    HAVING sum((e.entry).value::bigint) <> 0
) AS summed
GROUP BY queue, name;

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
-- name as above). The latest $6 attempts are picked from job_attempt_failures alone, newest
-- first down an index — all queues: job_attempt_failures_fp_idx; some queues: the latest $6
-- of each queue (job_attempt_failures_fp_queue_idx), then the latest $6 of those — and only
-- they are looked up, in jobs_retried_idx (jobs that ran more than once, with their
-- attempts and status: an index-only probe, no `jobs` heap page): at most $6 probes per
-- fingerprint however long the window, in the generic plan of the prepared statement too
-- (the branch not taken is a one-time filter).
SELECT a.fingerprint,
       count(j.id)::bigint AS retried,
       count(*) FILTER (WHERE j.status = 'completed')::bigint AS recovered
FROM (
    SELECT p.fingerprint, latest.job_id, latest.attempt
    FROM unnest($5::text[]) AS p(fingerprint)
    CROSS JOIN LATERAL (
        SELECT s.job_id, s.attempt
        FROM (
            (SELECT f.job_id, f.attempt, f.failed_at
             FROM job_attempt_failures f
             WHERE $3::text[] IS NULL AND f.fingerprint = p.fingerprint
               AND f.failed_at >= $1 AND f.failed_at < $2
               AND ($4::text IS NULL OR f.name = $4::text)
             ORDER BY f.failed_at DESC
             LIMIT $6)
            UNION ALL
            SELECT q.job_id, q.attempt, q.failed_at
            FROM unnest($3::text[]) AS u(queue)
            CROSS JOIN LATERAL (
                SELECT f.job_id, f.attempt, f.failed_at
                FROM job_attempt_failures f
                WHERE f.fingerprint = p.fingerprint AND f.queue = u.queue
                  AND f.failed_at >= $1 AND f.failed_at < $2
                  AND ($4::text IS NULL OR f.name = $4::text)
                ORDER BY f.failed_at DESC
                LIMIT $6
            ) AS q
        ) AS s
        ORDER BY s.failed_at DESC
        LIMIT $6
    ) AS latest
) AS a
LEFT JOIN jobs j ON j.id = a.job_id AND j.attempts > 1 AND j.attempts > a.attempt
GROUP BY a.fingerprint;

-- name: job_timeouts
-- The timeout the sample jobs ran with (seconds, from their options), by job id.
SELECT id, queue, (options->>'timeout_s')::float8 AS timeout_s
FROM jobs
WHERE id = ANY($1::text[]) AND jsonb_typeof(options->'timeout_s') = 'number';

-- name: queue_timeouts
SELECT queue, timeout_s::float8 AS timeout_s FROM job_queue_configs WHERE queue = ANY($1::text[]);
