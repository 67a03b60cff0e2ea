-- Raise one field of a watermark hash to an offset, never lower it: the partition
-- watermark's step of a batch on a Redis Cluster, after the shards' and the users' steps.
--
-- KEYS[1]: the hash. ARGV: field, offset.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

local previous = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > previous then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
