-- Bulk retry/cancel "by filter": the jobs a filter selects, oldest first.
-- $1 statuses, $2 queues (NULL: all), $3 from, $4 until (on finished_at, else created_at),
-- $5 job name, $6 limit. A job's fingerprint is that of its latest failed attempt.

-- name: select_by_fingerprint
-- $7 the fingerprint: its failed attempts (job_attempt_failures_fp_idx), joined to the jobs
-- whose current attempt is that one.
SELECT j.id
FROM job_attempt_failures f
JOIN jobs j ON j.id = f.job_id AND j.attempts = f.attempt
WHERE f.fingerprint = $7
  AND j.status = ANY($1::text[])
  AND ($2::text[] IS NULL OR j.queue = ANY($2::text[]))
  AND ($3::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) >= $3)
  AND ($4::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) < $4)
  AND ($5::text IS NULL OR j.name = $5)
ORDER BY coalesce(j.finished_at, j.created_at), j.id
LIMIT $6;

-- name: select_by_filter
SELECT j.id
FROM jobs j
WHERE j.status = ANY($1::text[])
  AND ($2::text[] IS NULL OR j.queue = ANY($2::text[]))
  AND ($3::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) >= $3)
  AND ($4::timestamptz IS NULL OR coalesce(j.finished_at, j.created_at) < $4)
  AND ($5::text IS NULL OR j.name = $5)
ORDER BY coalesce(j.finished_at, j.created_at), j.id
LIMIT $6;
