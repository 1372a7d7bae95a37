-- Makes Redis know a campaign: config overwritten, counters and the bucket count created
-- only if missing AND creation is allowed (so a re-sync never resets stock nor moves
-- entries), rounds upserted.
-- KEYS: 1 campaign hash, 2 rounds zset, 3 round-quantity hash
-- ARGV: 1 status, 2 per-person limit, 3 mode, 4 stock, 5 bucket count for a new campaign,
--       6 '1' if the counters may be created here (a campaign never created before: the
--       record's marker was just taken) else '0',
--       then (round_no, starts_at_ms, quantity) for each round
-- Returns {1 if the counters were created now else 0, the campaign's bucket count}, or
-- {-1, 0} when the counters are missing and may not be created: Redis lost this campaign's
-- hot state, and nothing was written (a partial hash would look like a campaign).

if redis.call('HEXISTS', KEYS[1], 'total') == 0 and ARGV[6] ~= '1' then
  return {-1, 0}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'limit', ARGV[2], 'mode', ARGV[3])
local created = redis.call('HSETNX', KEYS[1], 'total', ARGV[4])
redis.call('HSETNX', KEYS[1], 'pool', ARGV[4])
redis.call('HSETNX', KEYS[1], 'live', 0)
redis.call('HSETNX', KEYS[1], 'claimed', 0)
redis.call('HSETNX', KEYS[1], 'recycled', 0)
redis.call('HSETNX', KEYS[1], 'recyc_pend', 0)
redis.call('HSETNX', KEYS[1], 'released_round', 0)
redis.call('HSETNX', KEYS[1], 'nb', ARGV[5])
for i = 7, #ARGV, 3 do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
return {created, redis.call('HGET', KEYS[1], 'nb')}
