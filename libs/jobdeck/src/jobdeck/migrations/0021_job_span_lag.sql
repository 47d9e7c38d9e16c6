-- search (issue 12): how far apart in time the created, started and finished times of one
-- job of each (queue, job name) can lie. A search limited to a range of one time sorted by
-- another (created last week, sorted by startedAt descending) walks the other time's index
-- from its end through every job that started after last week ended: the planner takes the
-- two times as independent and prices that walk as short. With `max_lag_ms` the API's cost
-- guard knows where along the sort column the jobs searched can lie: within the range,
-- widened by the lag on both sides (services/api search_skew.py), whatever the clocks of
-- the machines that stamped the times.
--
-- A power of two above the largest difference between any two of a job's times (the
-- recorder rounds as widen_job_spans() does, spans.py); like the rest of the span it only
-- widens. NULL while unknown (a span written before this migration and not yet widened):
-- the guard then assumes nothing.
ALTER TABLE job_spans ADD COLUMN IF NOT EXISTS max_lag_ms bigint;

CREATE OR REPLACE FUNCTION widen_job_spans(queues text[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO job_spans AS s (
        queue, name, first_at, last_at, min_duration, max_duration, ended_unstarted,
        max_lag_ms
    )
    SELECT queue, name, date_trunc('hour', min(created_at)),
           date_trunc('hour', max(greatest(created_at, started_at, finished_at)))
               + interval '1 hour',
           CASE WHEN min(duration_ms) < 1 THEN 0
                ELSE 1::bigint << floor(log(2, min(duration_ms)))::int END,
           CASE WHEN max(duration_ms) < 1 THEN 1
                ELSE 1::bigint << (floor(log(2, max(duration_ms)))::int + 1) END,
           bool_or(status IN ('completed', 'failed', 'cancelled') AND started_at IS NULL),
           CASE WHEN max(lag) < 1 THEN 1 ELSE 1::bigint << (floor(log(2, max(lag)))::int + 1) END
    FROM (
        SELECT queue, name, created_at, started_at, finished_at, duration_ms, status,
               extract(epoch FROM greatest(created_at, started_at, finished_at)
                                  - least(created_at, started_at, finished_at)) * 1000 AS lag
        FROM jobs
        WHERE queues IS NULL OR queue = ANY(queues)
    ) j
    GROUP BY queue, name
    ORDER BY queue, name
    ON CONFLICT (queue, name) DO UPDATE
        SET first_at = least(s.first_at, excluded.first_at),
            last_at = greatest(s.last_at, excluded.last_at),
            min_duration = least(s.min_duration, excluded.min_duration),
            max_duration = greatest(s.max_duration, excluded.max_duration),
            ended_unstarted = s.ended_unstarted OR excluded.ended_unstarted,
            max_lag_ms = greatest(s.max_lag_ms, excluded.max_lag_ms);
$$;

SELECT widen_job_spans();
