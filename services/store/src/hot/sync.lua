-- Makes Redis know a campaign: config overwritten, counters and the bucket count created
-- only if missing (so a re-sync never resets stock nor moves entries), rounds upserted.
-- KEYS: 1 campaign hash, 2 rounds zset, 3 round-quantity hash
-- ARGV: 1 status, 2 per-person limit, 3 mode, 4 stock, 5 bucket count for a new campaign,
--       then (round_no, starts_at_ms, quantity) for each round
-- Returns {1 if the counters were created now else 0, the campaign's bucket count}.

redis.call('HSET', KEYS[1], 'status', ARGV[1], 'limit', ARGV[2], 'mode', ARGV[3])
local created = redis.call('HSETNX', KEYS[1], 'total', ARGV[4])
redis.call('HSETNX', KEYS[1], 'pool', ARGV[4])
redis.call('HSETNX', KEYS[1], 'live', 0)
redis.call('HSETNX', KEYS[1], 'claimed', 0)
redis.call('HSETNX', KEYS[1], 'recycled', 0)
redis.call('HSETNX', KEYS[1], 'recyc_pend', 0)
redis.call('HSETNX', KEYS[1], 'released_round', 0)
redis.call('HSETNX', KEYS[1], 'nb', ARGV[5])
for i = 6, #ARGV, 3 do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
return {created, redis.call('HGET', KEYS[1], 'nb')}
