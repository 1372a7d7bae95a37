-- Pauses or resumes a campaign Redis knows; a campaign it does not know is left alone (the
-- next sync writes the status from the record). KEYS: 1 campaign hash. ARGV: 1 status.
-- Returns 1 if set, 0 if the campaign is unknown.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 1
