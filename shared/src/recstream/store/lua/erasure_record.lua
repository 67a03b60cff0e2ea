-- Record a user's erasure in the erasures hash: the first step of an erasure on a Redis
-- Cluster, so that from here on every fold drops the user's events up to it.
--
-- KEYS[1]: the erasures hash. ARGV: user id, the record (JSON with erased_at), '1' when the
-- user has a state (the record is then written whatever the time of an earlier one).
-- Returns 1 when the user had no earlier record or a state, else 0 (as erase_user.lua).
--
-- These leading comment lines are not part of the script (recstream.store.redis drops them).

local previous = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and previous then
  if cjson.decode(ARGV[2]).erased_at > cjson.decode(previous).erased_at then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  end
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
