-- Named queries of the export endpoints (``exports_api.py``).

-- name: lock_caller
-- One export request per caller at a time, so two at once cannot both pass the throttle.
SELECT pg_advisory_xact_lock(hashtext('jobdeck-export:' || $1));

-- name: caller_load
SELECT count(*) FILTER (WHERE status IN ('pending', 'running')) AS in_flight,
       coalesce(array_agg(created_at ORDER BY created_at)
                FILTER (WHERE created_at > now() - interval '1 hour'), '{}') AS recent
  FROM exports
 WHERE requested_by = $1 AND created_at > now() - interval '1 hour'
    OR requested_by = $1 AND status IN ('pending', 'running');

-- name: insert_export
INSERT INTO exports (id, requested_by, format, filters, fields, include_data, include_logs,
                     scope, sort_by, sort_order, filename, rows_estimated, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING *;

-- name: get_export
SELECT * FROM exports WHERE id = $1;

-- name: list_exports
SELECT * FROM exports
 WHERE ($1::text IS NULL OR requested_by = $1) AND ($2::text IS NULL OR status = $2)
 ORDER BY created_at DESC, id DESC
 LIMIT $3;

-- name: delete_export
DELETE FROM exports WHERE id = $1 RETURNING storage_key;
