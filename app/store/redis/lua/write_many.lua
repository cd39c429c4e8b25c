-- RedisStore.write_many: values set and counters added in one round trip.
-- KEYS: the n values' keys, then the counters' keys.
-- ARGV[1]: n; ARGV[2 .. n+1]: the values; ARGV[n+2 .. 2n+1]: their ttls in ms;
-- then per counter: its amount and its ttl in ms (set when the counter is created).
-- Reply: the counters' new values, in order.
local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1 + i], 'PX', ARGV[1 + n + i])
end
local counts = {}
local base = 1 + 2 * n
for j = n + 1, #KEYS do
  local k = j - n
  redis.call('SET', KEYS[j], 0, 'PX', ARGV[base + 2 * k], 'NX')
  counts[k] = redis.call('INCRBY', KEYS[j], ARGV[base + 2 * k - 1])
end
return counts
