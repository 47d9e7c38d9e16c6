-- The recorder may create a job's row from a later event before its `added` arrives;
-- added_attempt says which attempt's `added` last set the identity columns (0: none yet,
-- so queue/name/data/options/priority/max_attempts/created_at are placeholders).
ALTER TABLE jobs ADD COLUMN added_attempt integer NOT NULL DEFAULT 0;
