-- Queue one job, write its `added` event and wake one idle worker, atomically.
-- KEYS: job hash, ready set, delayed set, event stream, wake list[, retry claim key]
-- ARGV: id, queue, name, spec, priority, max attempts, attempt offset, score (ready score, or
--       due time when delayed), delayed ('1'/'0'), event, stream maxlen, replace ('1'/'0'),
--       wake bound[, claim ttl ms]
-- Returns 1 queued, 0 the id is queued, running or kept (finished, not replaced),
--         2 the claim key was already taken.
local state = redis.call('HGET', KEYS[1], 'state')
if state and (state ~= 'done' or ARGV[12] == '0') then return 0 end
if KEYS[6] and not redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[14]) then return 2 end
redis.call('DEL', KEYS[1])
local delayed = ARGV[9] == '1'
redis.call('HSET', KEYS[1], 'q', ARGV[2], 'name', ARGV[3], 'spec', ARGV[4], 'prio', ARGV[5],
  'max', ARGV[6], 'off', ARGV[7], 'runs', 0, 'hb', 0,
  'state', delayed and 'delayed' or 'waiting', 'score', ARGV[8])
if delayed then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[11], '*', 'e', ARGV[10])
-- a delayed job wakes one worker too, so that it learns the new earliest due time
redis.call('LPUSH', KEYS[5], '1')
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[13]) - 1)
return 1
