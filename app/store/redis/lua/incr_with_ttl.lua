-- SET NX creates the counter with its ttl; INCR keeps an existing ttl.
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
return redis.call('INCRBY', KEYS[1], ARGV[2])
