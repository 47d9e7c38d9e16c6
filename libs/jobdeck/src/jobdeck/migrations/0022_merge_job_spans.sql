-- search (issue 12): one definition of how a span widens. Until now the rules (earliest
-- first_at, latest last_at, shortest and longest durations, sticky ended_unstarted, largest
-- lag) were written twice, in widen_job_spans() and in the recorder's widen_spans query;
-- both now call merge_job_spans().
--
-- merge_job_spans(spans): widen the spans of the given (queue, job name) keys to hold the
-- given ones (a JSON array of {queue, name, first_ms, last_ms, min_duration, max_duration,
-- ended_unstarted, max_lag_ms}, times in epoch milliseconds), keys in order so that two
-- writers lock the same rows in the same order; returns the spans as they now stand.
CREATE OR REPLACE FUNCTION merge_job_spans(spans jsonb)
RETURNS SETOF job_spans LANGUAGE sql AS $$
    INSERT INTO job_spans AS s (
        queue, name, first_at, last_at, min_duration, max_duration, ended_unstarted,
        max_lag_ms
    )
    SELECT w.queue, w.name, to_timestamp(w.first_ms / 1000.0), to_timestamp(w.last_ms / 1000.0),
           w.min_duration, w.max_duration, w.ended_unstarted, w.max_lag_ms
    FROM jsonb_to_recordset(spans) AS w(
        queue text, name text, first_ms bigint, last_ms bigint, min_duration bigint,
        max_duration bigint, ended_unstarted boolean, max_lag_ms bigint
    )
    ORDER BY w.queue, w.name
    ON CONFLICT (queue, name) DO UPDATE
        SET first_at = least(s.first_at, excluded.first_at),
            last_at = greatest(s.last_at, excluded.last_at),
            min_duration = least(s.min_duration, excluded.min_duration),
            max_duration = greatest(s.max_duration, excluded.max_duration),
            ended_unstarted = s.ended_unstarted OR excluded.ended_unstarted,
            max_lag_ms = greatest(s.max_lag_ms, excluded.max_lag_ms)
    RETURNING s.*;
$$;

-- The spans of the jobs of `queues` (all when NULL), rounded as the recorder rounds them
-- (jobdeck_recorder spans.py), merged in.
CREATE OR REPLACE FUNCTION widen_job_spans(queues text[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    SELECT count(*) FROM merge_job_spans(coalesce((
        SELECT jsonb_agg(to_jsonb(k)) FROM (
            SELECT queue, name,
                   (extract(epoch FROM date_trunc('hour', min(created_at))) * 1000)::bigint
                       AS first_ms,
                   (extract(epoch FROM date_trunc('hour', max(greatest(
                       created_at, started_at, finished_at))) + interval '1 hour') * 1000)::bigint
                       AS last_ms,
                   CASE WHEN min(duration_ms) < 1 THEN 0
                        ELSE 1::bigint << floor(log(2, min(duration_ms)))::int END
                       AS min_duration,
                   CASE WHEN max(duration_ms) < 1 THEN 1
                        ELSE 1::bigint << (floor(log(2, max(duration_ms)))::int + 1) END
                       AS max_duration,
                   bool_or(status IN ('completed', 'failed', 'cancelled') AND started_at IS NULL)
                       AS ended_unstarted,
                   CASE WHEN max(lag) < 1 THEN 1
                        ELSE 1::bigint << (floor(log(2, max(lag)))::int + 1) END AS max_lag_ms
            FROM (
                SELECT queue, name, created_at, started_at, finished_at, duration_ms, status,
                       extract(epoch FROM greatest(created_at, started_at, finished_at)
                                          - least(created_at, started_at, finished_at)) * 1000
                           AS lag
                FROM jobs
                WHERE queues IS NULL OR queue = ANY(queues)
            ) j
            GROUP BY queue, name
        ) k
    ), '[]'::jsonb));
$$;
