-- KEYS: a counter, then the keys to read. ARGV: the counter's ttl in ms (set when created).
-- Returns the counter's new value, then the value of each other key (nil where missing).
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local out = {redis.call('INCR', KEYS[1])}
for k = 2, #KEYS do
  out[k] = redis.call('GET', KEYS[k])
end
return out
