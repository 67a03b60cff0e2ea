-- apply_op(code, key, a, b): one shard operation (see recstream.plan.shards.Op), shared by
-- commit_batch.lua and erase_user.lua, which are each sent to Redis after this file.
-- The memory store (store/memory.py, MemoryStore._apply) does the same; the shared table of
-- cases (tests/shard_op_cases.py) checks the two against each other.
--
-- These leading comment lines are not part of the script: recstream.store.redis drops them
-- when it loads the file, so the script Redis runs (and its SHA1) is the code below alone.

local function apply_op(code, key, x, y)
  if code == 'Z' then redis.call('ZINCRBY', key, y, x)
  elseif code == 'G' then redis.call('ZADD', key, 'GT', y, x)
  elseif code == 'B' then
    redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(x) + 1))
    if tonumber(y) > 0 then redis.call('EXPIRE', key, y) end
  elseif code == 'S' then
    if tonumber(y) and tonumber(y) > 0 then redis.call('SET', key, x, 'EX', y)
    else redis.call('SET', key, x) end
  elseif code == 'H' then redis.call('HSET', key, x, y)
  elseif code == 'D' then redis.call('DEL', key)
  elseif code == 'R' then redis.call('ZREM', key, x)
  end
end
