-- analytics (issue 9): duration and wait histograms move out of job_rollups into
-- job_histograms, one row per (level, bucket, queue, job name), summed over the final
-- statuses. No report reads a histogram per status, and merging the histograms of a range
-- is what an analytics request spends its time on: a third of the rows to merge.
CREATE TABLE IF NOT EXISTS job_histograms (
    level         text NOT NULL CHECK (level IN ('minute', 'hour', 'day')),
    bucket        timestamptz NOT NULL,
    queue         text NOT NULL,
    name          text NOT NULL,
    duration_hist jsonb NOT NULL DEFAULT '{}'::jsonb,
    wait_hist     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (level, bucket, queue, name)
);

-- The histograms already kept, summed over status.
CREATE AGGREGATE jobdeck_hist_sum(jsonb) (
    SFUNC = jobdeck_hist_add, STYPE = jsonb, INITCOND = '{}'
);
INSERT INTO job_histograms (level, bucket, queue, name, duration_hist, wait_hist)
SELECT level, bucket, queue, name, jobdeck_hist_sum(duration_hist), jobdeck_hist_sum(wait_hist)
FROM job_rollups
GROUP BY level, bucket, queue, name
ON CONFLICT DO NOTHING;
DROP AGGREGATE jobdeck_hist_sum(jsonb);

ALTER TABLE job_rollups DROP COLUMN duration_hist, DROP COLUMN wait_hist;

-- The recorder adds a batch's (small) histogram delta to a stored row on every conflict:
-- work in proportion to the delta's buckets, not to both histograms' (the version of 0008
-- expanded and regrouped both). Buckets that reach zero are dropped, as before.
CREATE OR REPLACE FUNCTION jobdeck_hist_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (a || coalesce(s.merged, '{}'::jsonb)) - coalesce(s.zeros, '{}'::text[])
    FROM (
        SELECT jsonb_object_agg(key, n) FILTER (WHERE n <> 0) AS merged,
               array_agg(key) FILTER (WHERE n = 0) AS zeros
        FROM (
            SELECT key, coalesce((a ->> key)::bigint, 0) + value::bigint AS n
            FROM jsonb_each_text(b)
        ) AS d
    ) AS s
$$;
