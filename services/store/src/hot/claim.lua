-- The claim script: one atomic decision per claim attempt (see hot/mod.rs for the keys).
-- KEYS: 1 campaign hash, 2 rounds zset, 3 round-quantity hash, 4 the person's bucket of
--       person counts (:p:<b>), 5 the claim id's bucket of claim records (:v:<b>),
--       6 outbox stream
-- ARGV: 1 now_ms, 2 mode ('rush'|'list'), 3 person, 4 claim id (16 raw bytes),
--       5 the claim record (voucher id 16 raw bytes, claimed_at_ms 8 bytes big-endian,
--       state 'L', person), 6 encoded VoucherClaimed envelope, 7 the number of buckets the
--       caller computed the bucket keys with
-- Returns {'claimed'} | {'replayed', first 24 bytes of the record (voucher, claimed_at)}
--       | {'claim_id_conflict'} | {'unknown'} | {'buckets', nb} (the caller's bucket count is
--       not the campaign's: recompute the keys and retry) | {'paused'} | {'not_open'}
--       | {'sold_out'} | {'limit_reached'}
-- Every check runs before anything is written; a round release found on the way is
-- written even when the claim is then refused (it is a state change of its own).

local c = redis.call('HMGET', KEYS[1], 'status', 'limit', 'pool', 'live', 'released_round', 'recyc_pend', 'nb')
if not c[1] then
  return {'unknown'}
end
if c[7] ~= ARGV[7] then
  return {'buckets', c[7] or ''}
end

-- (1) A claim id seen before answers with the first result (the person is compared whole).
local record = redis.call('HGET', KEYS[5], ARGV[4])
if record then
  if string.sub(record, 26) == ARGV[3] then
    return {'replayed', string.sub(record, 1, 24)}
  end
  return {'claim_id_conflict'}
end

-- (2) (3) The campaign is known (above) and must be active.
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
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
redis.call('XADD', KEYS[6], '*', 'e', ARGV[6])
return {'claimed'}
