-- The claim script: one atomic decision per claim attempt (see hot/mod.rs for the keys).
-- KEYS: 1 campaign hash, 2 rounds zset, 3 round-quantity hash, 4 persons hash,
--       5 claims hash, 6 outbox stream
-- ARGV: 1 now_ms, 2 mode ('rush'|'list'), 3 person, 4 claim id (32 hex),
--       5 voucher id (32 hex), 6 claim record 'voucher|claimed_at_ms|person|L',
--       7 encoded VoucherClaimed envelope
-- Returns {'claimed'} | {'replayed', voucher_hex, claimed_at_ms} | {'claim_id_conflict'}
--       | {'unknown'} | {'paused'} | {'not_open'} | {'sold_out'} | {'limit_reached'}
-- Every check runs before anything is written; a round release found on the way is
-- written even when the claim is then refused (it is a state change of its own).

-- (1) A claim id seen before answers with the first result.
local record = redis.call('HGET', KEYS[5], ARGV[4])
if record then
  local voucher, at, who = string.match(record, '^([^|]*)|([^|]*)|([^|]*)|')
  if who == ARGV[3] then
    return {'replayed', voucher, at}
  end
  return {'claim_id_conflict'}
end

-- (2) (3) The campaign must be known and active.
local c = redis.call('HMGET', KEYS[1], 'status', 'limit', 'pool', 'live', 'released_round', 'recyc_pend')
if not c[1] then
  return {'unknown'}
end
if c[1] == 'paused' then
  return {'paused'}
end
local limit = tonumber(c[2]) or 0
local pool = tonumber(c[3]) or 0
local live = tonumber(c[4]) or 0
local released = tonumber(c[5]) or 0
local pending = tonumber(c[6]) or 0

-- (4) Release what is due: every round started by now (rush), or the whole pool (list).
local released_now = false
if ARGV[2] == 'rush' then
  local top = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[1], '-inf', 'LIMIT', 0, 1)
  if #top == 0 then
    return {'not_open'}
  end
  local current = tonumber(top[1]) or 0
  if current > released then
    for round = released + 1, current do
      local quantity = tonumber(redis.call('HGET', KEYS[3], tostring(round))) or 0
      local moved = math.min(pool, quantity + pending)
      pool = pool - moved
      live = live + moved
      pending = 0
    end
    released = current
    released_now = true
  end
elseif pool > 0 then
  live = live + pool
  pool = 0
  pending = 0
  released_now = true
end

local function write_release()
  if released_now then
    redis.call('HSET', KEYS[1], 'pool', pool, 'live', live, 'released_round', released, 'recyc_pend', pending)
  end
end

-- (5) (6) Stock and the per-person limit.
if live <= 0 then
  write_release()
  return {'sold_out'}
end
local held = tonumber(redis.call('HGET', KEYS[4], ARGV[3])) or 0
if held >= limit then
  write_release()
  return {'limit_reached'}
end

-- (7) The claim.
redis.call('HSET', KEYS[1], 'pool', pool, 'live', live - 1, 'released_round', released, 'recyc_pend', pending)
redis.call('HINCRBY', KEYS[1], 'claimed', 1)
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
redis.call('HSET', KEYS[5], ARGV[4], ARGV[6])
redis.call('XADD', KEYS[6], '*', 'e', ARGV[7])
return {'claimed'}
