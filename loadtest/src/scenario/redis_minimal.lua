-- The minimal claim (the redis-benchmark baseline, redis_minimal.rs): only the guards and
-- writes no claim can do without — no rounds, no claim-id replay, no signed record.
-- Every key carries the same hash tag.
-- KEYS: 1 stock (integer), 2 per-person counts (hash), 3 voucher records (hash: number →
--       person), 4 outbox (stream), 5 voucher numbers (integer)
-- ARGV: 1 person, 2 per-person limit
-- Returns the voucher's number, -1 (sold out) or -2 (the person's limit reached); a refusal
-- leaves nothing changed.

if redis.call('DECR', KEYS[1]) < 0 then
  redis.call('INCR', KEYS[1])
  return -1
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) > tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
  redis.call('INCR', KEYS[1])
  return -2
end
local n = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[3], n, ARGV[1])
redis.call('XADD', KEYS[4], '*', 'v', n, 'p', ARGV[1])
return n
