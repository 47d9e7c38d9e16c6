-- search (issue 12): where along time and duration the jobs of each queue and job name
-- lie. The API's cost guard reads it to see, before it runs, that a page sorted by a time
-- or duration would walk the jobs of other queues or names first: a job name introduced
-- last week sorted by finishedAt ascending, a queue retired last year sorted by startedAt
-- descending, a 10 ms task sorted by duration descending walk millions of rows that the
-- planner, which takes queue, name, time and duration as independent, prices as a few
-- (services/api search_skew.py).
--
-- One row per (queue, job name), a few hundred or thousand rows in all. The span only ever
-- widens, so it always holds every job of its key: `first_at` is at or before the first
-- creation of any of them, `last_at` at or after the last creation, start or finish (whole
-- hours); `min_duration`/`max_duration` a power of two at or below the shortest duration,
-- and one above the longest (NULL until one has a duration); `ended_unstarted` once one of
-- them ended (completed, failed, cancelled) without a start time. So the recorder writes a row
-- about once an hour per key (jobdeck_recorder spans.py), before the batch that needs it
-- commits. Deleted jobs leave it wider than
-- needed, which only makes the guard's bound lower. Any other writer of `jobs` (a bulk
-- load, a test's seed) calls widen_job_spans() after it: one pass over `jobs`, or over the
-- jobs of the queues it is given.
CREATE TABLE IF NOT EXISTS job_spans (
    queue    text NOT NULL,
    name     text NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    min_duration bigint,
    max_duration bigint,
    ended_unstarted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue, name)
);

CREATE OR REPLACE FUNCTION widen_job_spans(queues text[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO job_spans AS s (
        queue, name, first_at, last_at, min_duration, max_duration, ended_unstarted
    )
    SELECT queue, name, date_trunc('hour', min(created_at)),
           date_trunc('hour', max(greatest(created_at, started_at, finished_at)))
               + interval '1 hour',
           CASE WHEN min(duration_ms) < 1 THEN 0
                ELSE 1::bigint << floor(log(2, min(duration_ms)))::int END,
           CASE WHEN max(duration_ms) < 1 THEN 1
                ELSE 1::bigint << (floor(log(2, max(duration_ms)))::int + 1) END,
           bool_or(status IN ('completed', 'failed', 'cancelled') AND started_at IS NULL)
    FROM jobs
    WHERE queues IS NULL OR queue = ANY(queues)
    GROUP BY queue, name
    ORDER BY queue, name
    ON CONFLICT (queue, name) DO UPDATE
        SET first_at = least(s.first_at, excluded.first_at),
            last_at = greatest(s.last_at, excluded.last_at),
            min_duration = least(s.min_duration, excluded.min_duration),
            max_duration = greatest(s.max_duration, excluded.max_duration),
            ended_unstarted = s.ended_unstarted OR excluded.ended_unstarted;
$$;

SELECT widen_job_spans();
