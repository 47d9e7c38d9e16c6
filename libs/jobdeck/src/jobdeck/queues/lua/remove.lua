-- Forget a finished job in Redis (before an operator deletes its history): its hash goes
-- at once instead of at the end of its keep time. A job queued or running again is kept.
-- KEYS: job hash
-- Returns 'removed' (it was finished), 'gone' (Redis no longer held it), or its state
-- ('waiting', 'delayed', 'active') when it is not finished.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'gone' end
if state ~= 'done' then return state end
redis.call('DEL', KEYS[1])
return 'removed'
