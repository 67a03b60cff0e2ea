-- One statistic shard's step of a user's erasure on a Redis Cluster, sent after
-- apply_op.lua (see docs/keyspace.md, Erasure).
--
-- KEYS[1]: the shard's erasure progress hash (user id -> the user offset up to which the
-- shard's part was subtracted). ARGV: user id, expected progress ('' = none), new
-- progress, then per op: code, key, a, b. A step that ran once is not run again: the plan
-- of a retry leaves out what the recorded progress covers.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then
  return redis.error_reply('WMCONFLICT ' .. KEYS[1])
end
for a = 4, #ARGV, 4 do
  apply_op(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
