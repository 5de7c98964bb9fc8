-- message_edit.lua: edit or delete one stored message in place, and announce it.
-- KEYS[1] history (list, oldest first, consecutive seqs), KEYS[2] reactions hash
-- (seq -> JSON), cleared for a deleted message.
-- ARGV[1] "edit" or "delete", ARGV[2] seq, ARGV[3] caller's user id, ARGV[4] "1" when the
-- caller is an admin (may delete anyone's message), ARGV[5] edit: the new body as a JSON
-- string literal ("..." with its quotes, escaped as the stored messages are), ARGV[6] edit:
-- the new body's length in code points (text is capped at 4000), ARGV[7] the publish
-- command (PUBLISH, SPUBLISH, or "": return the events instead), ARGV[8..] pairs of
-- channel and event JSON head (ending after the seq value; the script adds the rest).
-- The entry keeps its place, seq, ts, sender and kind. Edit: the body is replaced and
-- ,"edited":true,"edited_ts":T ends the object (once, however often it is edited). Delete:
-- the body becomes "" and ,"deleted":true,"deleted_ts":T ends it (an earlier edit mark
-- goes). The entry is rewritten as a string, never decoded and encoded again, so every
-- byte the sender's message had before the body stays as it was (the router reads the seq
-- from that fixed head).
-- Returns {status}: "ok" (changed, published; with ARGV[7] "": {"ok", channel, event, ...}), "same" (nothing to do: the same body, or
-- deleted already), "not_found", "forbidden" (someone else's message), "deleted" (edit of
-- a deleted message), "image" (images cannot be edited), "too_large" (text over 4000).
local mode = ARGV[1]
if mode ~= 'edit' and mode ~= 'delete' then
    return redis.error_reply('ERR message_edit: mode must be edit or delete')
end
for _, i in ipairs({2, 6}) do
    local v = ARGV[i]
    if not (v and #v <= 15 and v:match('^%d+$')) then
        return redis.error_reply('ERR message_edit: ARGV[' .. i .. '] must be an integer')
    end
end
local pub = ARGV[7]
if pub ~= 'PUBLISH' and pub ~= 'SPUBLISH' and pub ~= '' then
    return redis.error_reply('ERR message_edit: ARGV[7] must be PUBLISH, SPUBLISH or ""')
end
if #ARGV < 9 or #ARGV % 2 ~= 1 then
    return redis.error_reply('ERR message_edit: channel and event head come in pairs')
end
local seq = tonumber(ARGV[2])

local function seq_of(msg)
    return tonumber(string.match(msg, '"seq":(%d+)')) or 0
end
-- Index of seq s is s - first while the list is consecutive; otherwise look at them all.
local n = redis.call('LLEN', KEYS[1])
if n == 0 or seq < 1 then
    return {'not_found'}
end
local first = seq_of(redis.call('LINDEX', KEYS[1], 0))
local idx = seq - first
local msg = (idx >= 0 and idx < n) and redis.call('LINDEX', KEYS[1], idx) or nil
if not msg or seq_of(msg) ~= seq then
    msg = nil
    for i, m in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
        if seq_of(m) == seq then
            msg, idx = m, i - 1
            break
        end
    end
end
if not msg then
    return {'not_found'}
end

-- A '"' after ',' is never inside a string (an inner quote is escaped), so the first
-- ,"kind":" and ,"body":" are the message's own keys; from comes right after ts.
local from = string.match(msg, '"ts":%d+,"from":{"id":"([^"]*)"')
local kind = string.match(msg, ',"kind":"(%a+)","body":"')
local b = string.find(msg, ',"body":"', 1, true)
if not from or not kind or not b then
    return redis.error_reply('ERR message_edit: the stored message has an unknown shape')
end
local open = b + 8 -- the body's opening quote
local p, close = open + 1, nil
while true do
    local e = string.find(msg, '["\\]', p)
    if not e then
        return redis.error_reply('ERR message_edit: unterminated body')
    end
    if string.byte(msg, e) == 92 then
        p = e + 2
    else
        close = e
        break
    end
end
local head, body, rest = msg:sub(1, open - 1), msg:sub(open, close), msg:sub(close + 1)
local deleted = string.find(rest, ',"deleted":true,"deleted_ts":%d+}$') ~= nil
rest = string.gsub(rest, ',"edited":true,"edited_ts":%d+}$', '}')

if from ~= ARGV[3] and not (mode == 'delete' and ARGV[4] == '1') then
    return {'forbidden'}
end
if deleted then
    return {mode == 'delete' and 'same' or 'deleted'}
end
local now = redis.call('TIME')
local ts = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local new, tail
if mode == 'edit' then
    if kind == 'image' then
        return {'image'}
    end
    if kind == 'text' and tonumber(ARGV[6]) > 4000 then
        return {'too_large'}
    end
    if body == ARGV[5] then
        return {'same'}
    end
    new = head .. ARGV[5] .. rest:sub(1, -2) .. ',"edited":true,"edited_ts":' .. ts .. '}'
    tail = ',"body":' .. ARGV[5] .. ',"edited_ts":' .. ts .. '}'
else
    new = head .. '""' .. rest:sub(1, -2) .. ',"deleted":true,"deleted_ts":' .. ts .. '}'
    tail = ',"deleted_ts":' .. ts .. '}'
    redis.call('HDEL', KEYS[2], string.format('%d', seq))
end
redis.call('LSET', KEYS[1], idx, new)
local out = {'ok'}
for i = 8, #ARGV, 2 do
    if pub == '' then
        out[#out + 1] = ARGV[i]
        out[#out + 1] = ARGV[i + 1] .. tail
    else
        redis.call(pub, ARGV[i], ARGV[i + 1] .. tail)
    end
end
return out
