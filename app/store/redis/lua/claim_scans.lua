-- KEYS: the epoch key, then per claim: principal, replay, status, audit stream.
-- ARGV: the expected epoch (empty: not checked), then per claim: claim, ttl, principal_ok,
-- n audit fields, n name/value pairs.
-- Returns 1 then 4 values per claim: principal, first (1/0), existing, status; or, when the
-- epoch key does not hold the expected epoch, only 0 and what it holds (nothing written).
-- A missing principal writes nothing, not even the audit entry (see `ScanClaim`).
if ARGV[1] ~= '' then
  local epoch = redis.call('GET', KEYS[1])
  if epoch ~= ARGV[1] then
    return {0, epoch}
  end
end
local out = {1}
local n = 1
local a = 2
for k = 2, #KEYS, 4 do
  local fields_from = a + 4
  local fields_to = fields_from + 2 * tonumber(ARGV[a + 3]) - 1
  local principal = redis.call('GET', KEYS[k])
  local first, existing, status, outcome = 0, false, false, 'principal_rejected'
  if principal == ARGV[a + 2] then
    status = redis.call('GET', KEYS[k + 2])
    existing = redis.call('GET', KEYS[k + 1])
    if existing then
      outcome = 'again'
    else
      redis.call('SET', KEYS[k + 1], ARGV[a] .. '|' .. (status or ''), 'EX', ARGV[a + 1])
      first, outcome = 1, 'first'
    end
  end
  if principal then
    redis.call('XADD', KEYS[k + 3], '*',
      'outcome', outcome, 'status', status or '', unpack(ARGV, fields_from, fields_to))
  end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = principal, first, existing, status
  n = n + 4
  a = fields_to + 1
end
return out
