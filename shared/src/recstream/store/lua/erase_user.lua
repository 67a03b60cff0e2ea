-- The erasure of one user, sent after apply_op.lua (see docs/keyspace.md, Erasure).
--
-- KEYS: the user's state hash, the erasures hash, one key per op.
-- ARGV: user id, expected watermark ('' = absent), erasure record, then per op: code, a, b.
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

local current = redis.call('HGET', KEYS[1], 'wm') or ''
if current ~= ARGV[2] then return redis.error_reply('WMCONFLICT ' .. KEYS[1]) end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if current == '' and previous then
  -- erased before and no state since: keep the later of the two erasure times
  if cjson.decode(ARGV[3]).erased_at > cjson.decode(previous).erased_at then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  end
  return 0
end
local a = 4
for k = 3, #KEYS do
  apply_op(ARGV[a], KEYS[k], ARGV[a + 1], ARGV[a + 2])
  a = a + 3
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
