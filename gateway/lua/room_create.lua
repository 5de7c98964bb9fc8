-- room_create.lua: create a room once and announce it.
-- KEYS[1] rooms hash, KEYS[2] names zset (score 0, the index rooms.lua pages by name).
-- ARGV[1] room name, ARGV[2] meta JSON, ARGV[3] channel ("" publishes nothing),
-- ARGV[4] event JSON.
-- Returns 1 when the room was created (the event was published), 0 when it existed.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
    redis.call('ZADD', KEYS[2], 0, ARGV[1])
    return 0
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[3] ~= '' then
    redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
