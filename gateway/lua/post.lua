-- post.lua: append one message to a room or DM history and publish it, atomically.
-- KEYS[1] seq (string), KEYS[2] history (list), KEYS[3] idempotency key (string).
-- ARGV[1] history max (int >= 1), ARGV[2] JSON head ending right before the seq value,
-- ARGV[3] JSON tail starting right after the ts value, ARGV[4] idempotency TTL seconds
-- (0: no idempotency, KEYS[3] untouched), ARGV[5] the publish command (PUBLISH, SPUBLISH, or
-- "": publish nothing and return the message, for channels outside this script's slot),
-- ARGV[6..n] channels to publish on (each in this script's slot for SPUBLISH).
-- Returns {seq, ts, 0} ({seq, ts, 0, message, channel...} with ARGV[5] ""), or {first_seq, first_ts, 1}
-- for a replayed idempotency key ({first_seq, first_ts, 1, message, channel...} with ARGV[5] ""
-- while history still holds it).
-- Integers are printed with %d: tostring() on a Lua 5.1 number switches to exponent
-- notation past 14 digits, and the stored JSON must be byte-exact.
-- Numbers are decimal digits only (15 at most, exact in a double): tonumber() alone would
-- let "inf", "nan" and "0x10" through, which Redis then rejects halfway through a script.
local max = #ARGV[1] <= 15 and ARGV[1]:match('^%d+$') and tonumber(ARGV[1])
local ttl = #ARGV[4] <= 15 and ARGV[4]:match('^%d+$') and tonumber(ARGV[4])
if not max or max < 1 then
    return redis.error_reply('ERR post: history max must be an integer >= 1')
end
if not ttl or ttl > 1000000000 then
    return redis.error_reply('ERR post: idempotency ttl must be an integer in 0..1000000000')
end
local pub = ARGV[5]
if pub ~= 'PUBLISH' and pub ~= 'SPUBLISH' and pub ~= '' then
    return redis.error_reply('ERR post: ARGV[5] must be PUBLISH, SPUBLISH or ""')
end
if #ARGV < 6 and pub ~= '' then
    return redis.error_reply('ERR post: at least one channel is required')
end

if ttl > 0 then
    local prev = redis.call('GET', KEYS[3])
    if prev then
        local s, t = string.match(prev, '^(%d+):(%d+)$')
        if s then
            -- Publishing left to the caller: it may not have published the
            -- first time (--durability replica publishes only once a replica
            -- has it), so the stored message comes back too while history
            -- still holds it.
            if pub == '' then
                local last = redis.call('LINDEX', KEYS[2], -1)
                local last_seq = last and tonumber(string.match(last, '"seq":(%d+)'))
                local back = last_seq and last_seq - tonumber(s)
                local msg = back and back >= 0 and redis.call('LINDEX', KEYS[2], -1 - back)
                if msg and string.find(msg, '"seq":' .. s .. ',', 1, true) then
                    local out = {tonumber(s), tonumber(t), 1, msg}
                    for i = 6, #ARGV do
                        out[#out + 1] = ARGV[i]
                    end
                    return out
                end
            end
            return {tonumber(s), tonumber(t), 1}
        end
        -- A value we did not write: fall through and overwrite it below.
    end
end

local seq = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local ts = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local msg = ARGV[2] .. string.format('%d', seq) .. ',"ts":' .. string.format('%d', ts) .. ARGV[3]

redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], string.format('%d', -max), '-1')
if ttl > 0 then
    redis.call('SET', KEYS[3], string.format('%d:%d', seq, ts), 'EX', string.format('%d', ttl))
end
if pub == '' then
    local out = {seq, ts, 0, msg}
    for i = 6, #ARGV do
        out[#out + 1] = ARGV[i]
    end
    return out
end
for i = 6, #ARGV do
    redis.call(pub, ARGV[i], msg)
end
return {seq, ts, 0}
