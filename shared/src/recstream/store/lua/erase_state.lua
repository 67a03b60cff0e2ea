-- The user's step of an erasure on a Redis Cluster, after the erasure record and every
-- shard step (see docs/keyspace.md, Erasure).
--
-- KEYS[1]: the user's state hash. ARGV[1]: the watermark the plan was made from ('' = none).
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

if (redis.call('HGET', KEYS[1], 'wm') or '') ~= ARGV[1] then
  return redis.error_reply('WMCONFLICT ' .. KEYS[1])
end
redis.call('DEL', KEYS[1])
return 1
