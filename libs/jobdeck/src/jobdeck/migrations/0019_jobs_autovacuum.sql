-- operations (issue 12): the pruner deletes the oldest finished jobs, which leaves dead index
-- entries at exactly the end of the indexes that the planner reads for a range's extreme
-- value (`startDate` older than every row makes it step over them while planning: 10 ms
-- instead of 0.2 ms at 10 M rows with 600,000 pruned jobs not yet vacuumed). Autovacuum's
-- default waits for 20 % dead rows — 2,000,000 at 10 M — so `jobs` is vacuumed at 1 % dead
-- (and analysed at 2 % changed, so the cost guard's statistics follow the history).
-- A catalog change only: no rewrite, no long lock.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
