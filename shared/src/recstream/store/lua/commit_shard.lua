-- One statistic shard's step of a partition batch on a Redis Cluster, sent after
-- apply_op.lua (see docs/keyspace.md, "On a Redis Cluster").
--
-- KEYS[1]: the shard's watermark hash for the topic. ARGV[1]: JSON
--   [partition, last offset, expected watermark ('-1' = absent), [code, key, a, b] per op, flat]
-- Every op key carries the shard's hash tag, so the script touches one slot. The step is
-- idempotent: once it ran, the shard's watermark covers the batch and a redelivery drops
-- this shard's part of it before it gets here.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

local step = cjson.decode(ARGV[1])
local partition, last, expected, ops = step[1], step[2], step[3], step[4]
if tonumber(redis.call('HGET', KEYS[1], partition) or '-1') ~= tonumber(expected) then
  return redis.error_reply('WMCONFLICT ' .. KEYS[1])
end
for o = 1, #ops, 4 do
  apply_op(ops[o], ops[o + 1], ops[o + 2], ops[o + 3])
end
redis.call('HSET', KEYS[1], partition, last)
return 1
