-- Queries of the recorder, the only writer of job state. A batch travels as one JSON
-- array (jsonb_to_recordset: one parameter, parsed by Postgres); timestamps as epoch ms.

-- name: lock_jobs
-- The current rows of a batch's jobs, locked until the batch commits (id order: no deadlocks).
SELECT id, queue, name, status, priority, max_attempts, added_attempt, template_id, schedule_id,
       (extract(epoch FROM created_at) * 1000)::bigint AS created_at,
       error_type, error_message, error_traceback, progress, progress_message, attempts, worker,
       (extract(epoch FROM run_at) * 1000)::bigint AS run_at,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at,
       (extract(epoch FROM finished_at) * 1000)::bigint AS finished_at,
       duration_ms, cancelled_by, version, version_ms, version_seq
FROM jobs
WHERE id = ANY($1::text[])
ORDER BY id
FOR UPDATE;

-- name: attempts_of
-- The attempt history of a batch's jobs (their job rows are locked: no other writer).
SELECT job_id, attempt, worker,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at,
       (extract(epoch FROM finished_at) * 1000)::bigint AS finished_at,
       outcome, error_type, error_message, error_traceback, final_ms, final_seq
FROM job_attempts
WHERE job_id = ANY($1::text[]);

-- name: upsert_attempts
-- $1: a JSON array of attempt rows (see store.attempt_doc), already merged in Python.
INSERT INTO job_attempts (
    job_id, attempt, worker, started_at, finished_at, outcome, error_type, error_message,
    error_traceback, final_ms, final_seq
)
SELECT s.job_id, s.attempt, s.worker, to_timestamp(s.started_at / 1000.0),
       to_timestamp(s.finished_at / 1000.0), s.outcome, s.error_type, s.error_message,
       s.error_traceback, s.final_ms, s.final_seq
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    job_id text, attempt int, worker text, started_at bigint, finished_at bigint, outcome text,
    error_type text, error_message text, error_traceback text, final_ms bigint, final_seq bigint
)
ON CONFLICT (job_id, attempt) DO UPDATE SET
    worker = EXCLUDED.worker, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at, outcome = EXCLUDED.outcome,
    error_type = EXCLUDED.error_type, error_message = EXCLUDED.error_message,
    error_traceback = EXCLUDED.error_traceback, final_ms = EXCLUDED.final_ms,
    final_seq = EXCLUDED.final_seq;

-- name: update_jobs
-- $1: a JSON array of rows (see store.row_doc); keep_* true leaves that column as stored.
UPDATE jobs AS j SET
    queue = s.queue, name = s.name, status = s.status, priority = s.priority,
    max_attempts = s.max_attempts, added_attempt = s.added_attempt,
    template_id = s.template_id, schedule_id = s.schedule_id,
    created_at = to_timestamp(s.created_at / 1000.0),
    data = CASE WHEN s.keep_data THEN j.data ELSE s.data END,
    options = CASE WHEN s.keep_options THEN j.options ELSE coalesce(s.options, '{}') END,
    result = CASE WHEN s.keep_result THEN j.result ELSE s.result END,
    error_type = s.error_type, error_message = s.error_message,
    error_traceback = s.error_traceback, progress = s.progress,
    progress_message = s.progress_message, attempts = s.attempts, worker = s.worker,
    run_at = to_timestamp(s.run_at / 1000.0),
    started_at = to_timestamp(s.started_at / 1000.0),
    finished_at = to_timestamp(s.finished_at / 1000.0),
    duration_ms = s.duration_ms, cancelled_by = s.cancelled_by, version = s.version,
    version_ms = s.version_ms, version_seq = s.version_seq,
    updated_at = now()
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    id text, queue text, name text, status text, priority int, max_attempts int,
    added_attempt int, template_id text, schedule_id text, created_at bigint,
    data jsonb, keep_data boolean, options jsonb, keep_options boolean,
    result jsonb, keep_result boolean, error_type text, error_message text,
    error_traceback text, progress real, progress_message text, attempts int, worker text,
    run_at bigint, started_at bigint, finished_at bigint, duration_ms bigint,
    cancelled_by text, version int, version_ms bigint, version_seq bigint
)
WHERE j.id = s.id;

-- name: insert_jobs
-- Rows no one had written when the batch locked its jobs; a conflict means another
-- recorder inserted one meanwhile, and the caller redoes the batch.
INSERT INTO jobs (
    id, queue, name, status, priority, max_attempts, added_attempt, template_id, schedule_id,
    created_at, data, options, result, error_type, error_message, error_traceback, progress,
    progress_message, attempts, worker, run_at, started_at, finished_at, duration_ms,
    cancelled_by, version, version_ms, version_seq
)
SELECT s.id, s.queue, s.name, s.status, s.priority, s.max_attempts, s.added_attempt,
       s.template_id, s.schedule_id, to_timestamp(s.created_at / 1000.0),
       s.data, coalesce(s.options, '{}'), s.result, s.error_type, s.error_message,
       s.error_traceback, s.progress, s.progress_message, s.attempts, s.worker,
       to_timestamp(s.run_at / 1000.0), to_timestamp(s.started_at / 1000.0),
       to_timestamp(s.finished_at / 1000.0), s.duration_ms, s.cancelled_by, s.version,
       s.version_ms, s.version_seq
FROM jsonb_to_recordset($1::text::jsonb) AS s(
    id text, queue text, name text, status text, priority int, max_attempts int,
    added_attempt int, template_id text, schedule_id text, created_at bigint,
    data jsonb, options jsonb, result jsonb, error_type text, error_message text,
    error_traceback text, progress real, progress_message text, attempts int, worker text,
    run_at bigint, started_at bigint, finished_at bigint, duration_ms bigint,
    cancelled_by text, version int, version_ms bigint, version_seq bigint
)
ON CONFLICT (id) DO NOTHING;

-- name: insert_logs
INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)
SELECT s.job_id, s.attempt, s.seq, to_timestamp(s.ts / 1000.0), s.level, s.message
FROM jsonb_to_recordset($1::text::jsonb)
    AS s(job_id text, attempt int, seq int, ts bigint, level text, message text)
ON CONFLICT (job_id, attempt, seq, ts) DO NOTHING;

-- name: unfinished_stale_first
-- The janitor's candidates: unfinished jobs no event has touched for $1 ms, oldest first,
-- at most $2 (jobs_unfinished_updated_idx: the status list must match its predicate).
SELECT id, queue, name, status, attempts, version, updated_at,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at
FROM jobs
WHERE status IN ('waiting', 'delayed', 'active')
  AND updated_at < now() - make_interval(secs => $1::bigint / 1000.0)
ORDER BY updated_at, id
LIMIT $2;

-- name: unfinished_stale_after
-- The same, continuing after the cursor ($3 updated_at, $4 id) where the last pass stopped.
SELECT id, queue, name, status, attempts, version, updated_at,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at
FROM jobs
WHERE status IN ('waiting', 'delayed', 'active')
  AND updated_at < now() - make_interval(secs => $1::bigint / 1000.0)
  AND (updated_at, id) > ($3::timestamptz, $4::text)
ORDER BY updated_at, id
LIMIT $2;

-- name: retention_configs
-- Each configured queue's retention (NULL: the recorder's default; 0: keep forever).
SELECT queue, keep_completed_days, keep_failed_days, keep_logs_days FROM job_queue_configs;

-- name: prune_jobs
-- One batch of the pruner: up to $4 jobs of queue $1 with final status $2 that finished
-- before $3, oldest first (jobs_retention_idx), and their log lines, in one statement. SKIP
-- LOCKED: a row the recorder is writing right now waits for the next batch.
-- `queue = ANY(ARRAY[$1])` and `ORDER BY queue, ...` are the plain equality and order, written
-- so that only jobs_retention_idx (queue, status, finished_at) serves them in order: with
-- `queue = $1` the planner, trusting finished_at's physical order, walked
-- jobs_final_finished_idx (finished_at, queue, status) through every other queue's old rows
-- (at 10 M rows: 115 ms warm, 2.2 s cold a batch, against 12-17 ms).
WITH doomed AS (
    SELECT id FROM jobs
    WHERE queue = ANY(ARRAY[$1]) AND status = $2 AND finished_at < $3
    ORDER BY queue, finished_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM jobs j USING doomed d WHERE j.id = d.id RETURNING j.id
), logs AS (
    DELETE FROM job_logs l USING gone g WHERE l.job_id = g.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS jobs, (SELECT count(*) FROM logs) AS logs;

-- name: logs_pruned_until
SELECT logs_pruned_until FROM job_retention_state WHERE queue = $1 AND status = $2;

-- name: prune_logs
-- One batch of log pruning: the log lines of up to $5 jobs of queue $1, status $2, that
-- finished after $3 (where the last batch stopped) and before $4; returns how far it got.
-- (queue = ANY, ORDER BY queue: jobs_retention_idx, as in prune_jobs)
WITH done AS (
    SELECT id, finished_at FROM jobs
    WHERE queue = ANY(ARRAY[$1]) AND status = $2 AND finished_at > $3 AND finished_at < $4
    ORDER BY queue, finished_at
    LIMIT $5
), logs AS (
    DELETE FROM job_logs l USING done d WHERE l.job_id = d.id RETURNING 1
)
SELECT (SELECT max(finished_at) FROM done) AS until,
       (SELECT count(*) FROM done) AS jobs,
       (SELECT count(*) FROM logs) AS logs;

-- name: save_logs_pruned_until
INSERT INTO job_retention_state (queue, status, logs_pruned_until) VALUES ($1, $2, $3)
ON CONFLICT (queue, status) DO UPDATE
SET logs_pruned_until = EXCLUDED.logs_pruned_until, updated_at = now();

-- name: ensure_log_partitions
-- job_logs partitions for the current month and the next $1 (migration 0014).
SELECT jobdeck_ensure_log_partitions($1);

-- name: drop_log_partitions
-- Drop the job_logs partitions whose month ended before $1; their names.
SELECT jobdeck_drop_log_partitions($1);

-- name: tombstones
-- When each of these jobs was removed (only removed ones are returned), epoch ms.
SELECT id, (extract(epoch FROM removed_at) * 1000)::bigint AS removed_ms
FROM job_tombstones WHERE id = ANY($1::text[]);

-- name: prune_tombstones
-- Tombstones older than $1 (past the stream's horizon: no event of theirs comes any more).
DELETE FROM job_tombstones
WHERE id IN (SELECT id FROM job_tombstones WHERE removed_at < $1 ORDER BY removed_at LIMIT $2);

-- name: widen_spans
-- Widen the spans of (queue, job name) to hold the batch's rows (recorder spans.py; the
-- rules are merge_job_spans(), migration 0022). Returns the spans as they now stand.
SELECT queue, name, (extract(epoch FROM first_at) * 1000)::bigint AS first_ms,
       (extract(epoch FROM last_at) * 1000)::bigint AS last_ms, min_duration, max_duration,
       ended_unstarted, max_lag_ms
FROM merge_job_spans($1::text::jsonb);
