-- Put back a running job that Redis lost (a restart without persistence), as its run left
-- it: the run keeps its lease and can finish; a job that exists again is left alone.
-- KEYS: job hash, active set
-- ARGV: id, lease deadline ms, then the hash's fields and values
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
