-- Promote a delayed job (a future run time, or a retry backing off): it becomes ready now,
-- ranked by its priority like a job enqueued now, and one idle worker is woken for it.
-- KEYS: job hash, ready set, delayed set, wake list
-- ARGV: id, now ms, priority weight, wake bound
-- Returns 'promoted', or the job's state when it is not delayed ('gone' if Redis lost it).
local f = redis.call('HMGET', KEYS[1], 'state', 'prio')
if not f[1] then return 'gone' end
if f[1] ~= 'delayed' or redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return f[1] end
local score = string.format('%.0f', tonumber(ARGV[2]) - tonumber(f[2]) * tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'state', 'waiting', 'score', score)
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('LPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
return 'promoted'
