-- apply_op(code, key, a, b): one shard operation (see recstream.plan.shards.Op), shared by
-- commit_batch.lua and erase_user.lua, which are each sent to Redis after this file.
-- The memory store (store/memory.py, MemoryStore._apply) does the same; the shared table of
-- cases (tests/shard_op_cases.py) checks the two against each other.
--
-- These leading comment lines are not part of the script: recstream.store.redis drops them
-- when it loads the file, so the script Redis runs (and its SHA1) is the code below alone.

-- log2 scores as recstream.model.decay adds and subtracts them, with the same libm calls
local LN2 = math.log(2)
local REMAINDER_FLOOR = 1e-9

local function apply_op(code, key, x, y)
  if code == 'L' then
    local score, add = redis.call('ZSCORE', key, x), tonumber(y)
    if score then
      local a = tonumber(score)
      local high, low = math.max(a, add), math.min(a, add)
      add = high + math.log(1 + 2 ^ (low - high)) / LN2
    end
    redis.call('ZADD', key, add, x)
  elseif code == 'M' then
    local score = redis.call('ZSCORE', key, x)
    if score then
      local a, b = tonumber(score), tonumber(y)
      local share = b < a and 1 - 2 ^ (b - a) or 0
      if share < REMAINDER_FLOOR then redis.call('ZREM', key, x)
      else redis.call('ZADD', key, a + math.log(share) / LN2, x) end
    end
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
  elseif code == 'I' then redis.call('HINCRBY', key, x, y)
  end
end
