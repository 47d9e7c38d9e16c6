-- Named queries of the exporter (``-- name: x`` blocks, loaded once by ``queries.py``).

-- name: claim
-- Take an export to run: a pending one, or a running one whose owner stopped renewing.
UPDATE exports
   SET status = 'running', owner = $2, lease_until = now() + $3 * interval '1 millisecond',
       attempts = attempts + 1, started_at = coalesce(started_at, now()), rows_done = 0
 WHERE id = $1
   AND (status = 'pending' OR (status = 'running' AND lease_until < now()))
RETURNING id, requested_by, format, filters, fields, include_data, include_logs, scope,
          sort_by, sort_order, filename, attempts, created_at;

-- name: state
SELECT status, owner, lease_until > now() AS leased FROM exports WHERE id = $1;

-- name: renew
-- Extend the lease and report progress; no row back means the export was taken over or
-- deleted, and its runner must stop.
UPDATE exports
   SET lease_until = now() + $3 * interval '1 millisecond', rows_done = $4,
       rows_estimated = coalesce($5, rows_estimated)
 WHERE id = $1 AND owner = $2 AND status = 'running'
RETURNING id;

-- name: finish
UPDATE exports
   SET status = 'done', rows_done = $3, row_count = $3, size_bytes = $4, storage_key = $5,
       url = $6, expires_at = $7, finished_at = now(), lease_until = NULL, error = NULL
 WHERE id = $1 AND owner = $2 AND status = 'running'
RETURNING id;

-- name: fail
UPDATE exports
   SET status = 'failed', error = $3, finished_at = now(), lease_until = NULL,
       expires_at = now() + $4 * interval '1 second'
 WHERE id = $1 AND status IN ('pending', 'running') AND (owner IS NULL OR owner = $2)
RETURNING requested_by;

-- name: hand_back
-- Shutting down mid-export: give it back for another replica, this try not counted.
UPDATE exports
   SET status = 'pending', owner = NULL, lease_until = NULL, attempts = attempts - 1
 WHERE id = $1 AND owner = $2 AND status = 'running'
RETURNING id;

-- name: expired
-- Finished exports past their expiry, removed (rows here, files by the caller).
DELETE FROM exports
 WHERE id IN (SELECT id FROM exports WHERE expires_at < now()
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, storage_key;

-- name: lost
-- Exports nobody is running: pending for a while, or running with a lease long gone
-- (their stream entry was lost, e.g. with a Redis restart); re-queued by the janitor.
SELECT id FROM exports
 WHERE (status = 'pending' AND created_at < now() - $1 * interval '1 millisecond')
    OR (status = 'running' AND lease_until < now() - $1 * interval '1 millisecond')
 ORDER BY created_at LIMIT 100;

-- name: count_by_status
SELECT status, count(*) AS n FROM jobs {where} GROUP BY status ORDER BY n DESC, status;

-- name: count_by_queue
SELECT queue, count(*) AS n FROM jobs {where} GROUP BY queue ORDER BY n DESC, queue;

-- name: duration_stats
SELECT min(duration_ms)::float8 AS min, avg(duration_ms)::float8 AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
       max(duration_ms)::float8 AS max
  FROM jobs {where};

-- name: count_logs
SELECT count(*) FROM job_logs WHERE job_id IN (SELECT id FROM jobs {where});
