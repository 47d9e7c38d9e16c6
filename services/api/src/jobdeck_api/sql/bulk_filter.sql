-- Bulk actions "by filter": the jobs a filter selects, oldest first. Each query walks an
-- index in its ORDER BY order and stops after $6 rows, so that a filter over a table of
-- many millions of rows reads what it returns, not the table (EXPLAIN at 10 M: README).
-- A finished job (completed, failed, cancelled) is ordered and windowed by finished_at, an
-- unfinished one (waiting, delayed, active) by created_at: the recorder sets finished_at
-- when a job reaches a final status and clears it when the job is queued again.
-- $1 statuses (all finished, or all unfinished), $2 queues (NULL: all), $3 from, $4 until,
-- $5 job name, $6 limit.

-- name: select_finished
-- jobs_final_finished_idx (finished_at, queue, status) from the oldest, queue and status
-- checked inside the index (the literal IN lets the planner use the partial index).
SELECT j.id
FROM jobs j
WHERE j.status IN ('completed', 'failed', 'cancelled')
  AND j.status = ANY($1::text[])
  AND ($2::text[] IS NULL OR j.queue = ANY($2::text[]))
  AND j.finished_at >= coalesce($3::timestamptz, '-infinity')
  AND j.finished_at < coalesce($4::timestamptz, 'infinity')
  AND ($5::text IS NULL OR j.name = $5)
ORDER BY j.finished_at, j.id
LIMIT $6;

-- name: select_unfinished
-- Per status, jobs_status_created_idx (status, created_at DESC, id DESC) walked backwards
-- from the oldest; the oldest $6 of each status merged.
SELECT u.id
FROM unnest($1::text[]) AS s(status)
CROSS JOIN LATERAL (
    SELECT j.id, j.created_at
    FROM jobs j
    WHERE j.status = s.status
      AND ($2::text[] IS NULL OR j.queue = ANY($2::text[]))
      AND j.created_at >= coalesce($3::timestamptz, '-infinity')
      AND j.created_at < coalesce($4::timestamptz, 'infinity')
      AND ($5::text IS NULL OR j.name = $5)
    ORDER BY j.created_at, j.id
    LIMIT $6
) u
ORDER BY u.created_at, u.id
LIMIT $6;

-- name: select_by_fingerprint
-- $7 the fingerprint: its failed attempts oldest first (job_attempt_failures_fp_idx), each
-- joined to its job when the job's current attempt is that one (a job's fingerprint is
-- that of its latest failed attempt).
SELECT j.id
FROM job_attempt_failures f
JOIN jobs j ON j.id = f.job_id AND j.attempts = f.attempt
WHERE f.fingerprint = $7
  AND j.status = ANY($1::text[])
  AND ($2::text[] IS NULL OR j.queue = ANY($2::text[]))
  AND ($3::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) >= $3)
  AND ($4::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) < $4)
  AND ($5::text IS NULL OR j.name = $5)
ORDER BY f.failed_at, f.job_id
LIMIT $6;
