-- Returns one expired voucher's stock to its campaign's pool (released by the next round).
-- KEYS: 1 campaign hash, 2 claims hash, 3 outbox stream
-- ARGV: 1 claim id (32 hex), 2 voucher id (32 hex), 3 encoded StockRecycled envelope
-- Returns 1 recycled now, 0 already recycled, -1 no such claim, -2 the claim made another
-- voucher, -3 the campaign is unknown.

local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then
  return -1
end
local voucher = string.match(record, '^([^|]*)|')
if voucher ~= ARGV[2] then
  return -2
end
if string.sub(record, -1) == 'R' then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -3
end
redis.call('HSET', KEYS[2], ARGV[1], string.sub(record, 1, -2) .. 'R')
redis.call('HINCRBY', KEYS[1], 'pool', 1)
redis.call('HINCRBY', KEYS[1], 'recyc_pend', 1)
redis.call('HINCRBY', KEYS[1], 'recycled', 1)
redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
return 1
