-- KEYS: the audit stream shard of this slot group, then one replay key per claim.
-- ARGV per claim: principal ok (1/0, or empty when missing: nothing is written for it, see
-- `ScanClaim`), status, claim, ttl, n audit fields, n name/value pairs.
-- Returns 2 values per claim: first (1/0), existing.
local stream = KEYS[1]
local out = {}
local n = 0
local a = 1
for k = 2, #KEYS do
  local status = ARGV[a + 1]
  local fields_from = a + 5
  local fields_to = fields_from + 2 * tonumber(ARGV[a + 4]) - 1
  local first, existing, outcome = 0, false, 'principal_rejected'
  if ARGV[a] == '1' then
    existing = redis.call('GET', KEYS[k])
    if existing then
      outcome = 'again'
    else
      redis.call('SET', KEYS[k], ARGV[a + 2] .. '|' .. status, 'EX', ARGV[a + 3])
      first, outcome = 1, 'first'
    end
  end
  if ARGV[a] ~= '' then
    redis.call('XADD', stream, '*',
      'outcome', outcome, 'status', status, unpack(ARGV, fields_from, fields_to))
  end
  out[n + 1], out[n + 2] = first, existing
  n = n + 2
  a = fields_to + 1
end
return out
