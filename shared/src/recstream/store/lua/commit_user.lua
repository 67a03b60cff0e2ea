-- One user's step of a partition batch on a Redis Cluster (see docs/keyspace.md, "On a
-- Redis Cluster"), run after every shard step of the batch.
--
-- KEYS[1]: the user's state hash. ARGV: expected watermark ('' = absent), new watermark,
-- TTL in seconds (0 = none), the new state. Idempotent: once written, the user's watermark
-- covers the batch and a redelivery skips the user's records.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

if (redis.call('HGET', KEYS[1], 'wm') or '') ~= ARGV[1] then
  return redis.error_reply('WMCONFLICT ' .. KEYS[1])
end
redis.call('HSET', KEYS[1], 'wm', ARGV[2], 'st', ARGV[4])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
