-- Returns one expired voucher's stock to its campaign's pool (released by the next round).
-- KEYS: 1 campaign hash, 2 the claim id's bucket of claim records (:v:<b>), 3 outbox stream
-- ARGV: 1 claim id (16 raw bytes), 2 voucher id (16 raw bytes), 3 encoded StockRecycled
--       envelope, 4 the number of buckets the caller computed the bucket key with
-- Returns 1 recycled now, 0 already recycled, -1 no such claim, -2 the claim made another
-- voucher, -3 the campaign is unknown, -4 the caller's bucket count is not the campaign's
-- (recompute the key and retry).
-- The record: voucher id (bytes 1-16), claimed_at (17-24), state (25: 'L' or 'R'), person.

local nb = redis.call('HGET', KEYS[1], 'nb')
if not nb then
  return -3
end
if nb ~= ARGV[4] then
  return -4
end
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then
  return -1
end
if string.sub(record, 1, 16) ~= ARGV[2] then
  return -2
end
if string.sub(record, 25, 25) == 'R' then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], string.sub(record, 1, 24) .. 'R' .. string.sub(record, 26))
redis.call('HINCRBY', KEYS[1], 'pool', 1)
redis.call('HINCRBY', KEYS[1], 'recyc_pend', 1)
redis.call('HINCRBY', KEYS[1], 'recycled', 1)
redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
return 1
