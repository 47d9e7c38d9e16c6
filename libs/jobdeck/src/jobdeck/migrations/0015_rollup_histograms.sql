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
