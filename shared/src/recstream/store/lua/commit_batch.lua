-- The commit of one partition batch, sent after apply_op.lua (see docs/keyspace.md).
--
-- KEYS: the partition watermark hash, the users' state hashes, the touched shards'
-- watermark hashes. ARGV[1]: the batch as JSON (decoded once by cjson, which is far cheaper
-- for both sides than thousands of separate arguments):
--   [partition, last offset, user TTL (0 = none),
--    [expected watermark ('' = absent), new watermark] per user, flat,
--    [[expected offset, [code, key, a, b] per op, flat] per shard],
--    read-from offset ('' = not checked), log-start offset]
-- ARGV[1 + i]: user i's new state. Numbers travel as strings: Lua would print a number with
-- only 14 significant digits. Every op key carries the hash tag of its shard's watermark key.
-- A batch must continue its partition (see recstream.store.port.BatchCommit), else STATELOST.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

local batch = cjson.decode(ARGV[1])
local partition, last, ttl = batch[1], batch[2], tonumber(batch[3])
local marks, shards = batch[4], batch[5]
if batch[6] ~= '' then
  local mark = redis.call('HGET', KEYS[1], partition)
  if tonumber(batch[6]) > (mark and tonumber(mark) + 1 or tonumber(batch[7])) then
    return redis.error_reply('STATELOST ' .. (mark or ''))
  end
end
local users = #marks / 2
for i = 1, users do
  if (redis.call('HGET', KEYS[1 + i], 'wm') or '') ~= marks[2 * i - 1] then
    return redis.error_reply('WMCONFLICT ' .. KEYS[1 + i])
  end
end
for j = 1, #shards do
  local key = KEYS[1 + users + j]
  if tonumber(redis.call('HGET', key, partition) or '-1') ~= tonumber(shards[j][1]) then
    return redis.error_reply('WMCONFLICT ' .. key)
  end
end
for j = 1, #shards do
  local ops = shards[j][2]
  for o = 1, #ops, 4 do
    apply_op(ops[o], ops[o + 1], ops[o + 2], ops[o + 3])
  end
  redis.call('HSET', KEYS[1 + users + j], partition, last)
end
for i = 1, users do
  redis.call('HSET', KEYS[1 + i], 'wm', marks[2 * i], 'st', ARGV[1 + i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[1 + i], ttl) end
end
local previous = tonumber(redis.call('HGET', KEYS[1], partition) or '-1')
if tonumber(last) > previous then
  redis.call('HSET', KEYS[1], partition, last)
end
return users
