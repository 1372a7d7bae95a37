-- The record remembers that a campaign's hot state was created in Redis (issue 13, "Redis
-- lost its data").
--
-- Redis creates a campaign's counters (`total` = `pool` = stock, `claimed` 0, no person
-- counts) when its sync script finds them missing. That is right exactly once, for a new
-- campaign. Done again after Redis restarted EMPTY, it would hand out the whole stock a
-- second time (oversell, I1) and forget who already holds a voucher (second vouchers, I2).
-- So the services create the counters only after taking this marker with a conditional
-- update (`… SET hot_created_at = now() WHERE id = $1 AND hot_created_at IS NULL`): one
-- process, once, ever. Every other sync may only update counters that exist; a missing hash
-- of a marked campaign is "hot state lost" (503 `HOT_STATE_LOST`, `/readyz` not ready)
-- until `reconciliation rebuild` writes the hot state from this record (and keeps the
-- marker set).
--
-- Existing campaigns: the running services synced every one of them into Redis, so they
-- are marked as created. A campaign that was never synced (Redis unreachable since it was
-- created) then reports HOT_STATE_LOST, and `reconciliation rebuild` creates it: the safe
-- side of the doubt.
ALTER TABLE campaigns ADD COLUMN hot_created_at timestamptz NULL;
UPDATE campaigns SET hot_created_at = created_at;
