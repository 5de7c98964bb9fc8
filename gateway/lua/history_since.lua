-- history_since.lua: a history list and its seq, read atomically.
-- KEYS[1] seq (string), KEYS[2] history (list).
-- Returns {current_seq (0 if absent), msg1, msg2, ...}, oldest first.
local seq = tonumber(redis.call('GET', KEYS[1])) or 0
local out = {seq}
for _, msg in ipairs(redis.call('LRANGE', KEYS[2], '0', '-1')) do
    out[#out + 1] = msg
end
return out
