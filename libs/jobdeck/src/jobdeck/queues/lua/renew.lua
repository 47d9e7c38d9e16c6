-- Extend the leases of a worker's runs; say which it no longer owns and which were asked
-- to stop.
-- KEYS: active set
-- ARGV: new deadline ms, job key prefix, then id, token for each run
-- Returns {lost ids (the token is no longer this run's: another run owns the job, or its
--          lease expired and it was requeued or failed; also a run's own finish racing the
--          renewal, which its worker knows to ignore), missing ids (Redis lost the job:
--          restore it), {id, who asked ('' = nobody named), ...} of the runs asked to stop}.
local lost, missing, abort = {}, {}, {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', ARGV[2] .. id, 'token', 'abort', 'state')
  if f[1] == token then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    if f[2] then
      abort[#abort + 1] = id
      abort[#abort + 1] = f[2]
    end
  elseif f[3] then
    lost[#lost + 1] = id
  else
    missing[#missing + 1] = id
  end
end
return {lost, missing, abort}
