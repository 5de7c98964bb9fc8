#ifndef GW_KEYS_H
#define GW_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Every Redis key and pub/sub channel name of PROTOCOL.md section 5 (and our
 * own bookkeeping keys, docs/operations.md), built here and nowhere else.
 *
 * Each builder writes prefix + name into buf and returns buf, or NULL when
 * it does not fit in len bytes; callers fail the request on NULL rather than
 * proceed with a truncated key.  Names going into keys are validated first
 * (room names, user ids) by the caller.  GW_KEY_MAX fits every key built from
 * valid names and a valid prefix.
 */

#define GW_KEY_MAX 384

/* The global keys: "<prefix>rooms" (hash of rooms), "<prefix>online"
 * (sorted set of online users), and the channel "<prefix>all" (broadcasts,
 * room creation, online/offline). */
__attribute__((warn_unused_result)) const char *gw_key_rooms(char *buf, size_t len,
                                                             const char *prefix);
__attribute__((warn_unused_result)) const char *gw_key_online(char *buf, size_t len,
                                                              const char *prefix);
__attribute__((warn_unused_result)) const char *gw_key_all(char *buf, size_t len,
                                                           const char *prefix);
/* "<prefix>online:nodes:<UID>{<prefix>online}": the nodes keeping uid online. */
__attribute__((warn_unused_result)) const char *
gw_key_online_holders(char *buf, size_t len, const char *prefix, const char *uid);
/* "<prefix>online:users{<prefix>online}": online user id -> user JSON. */
__attribute__((warn_unused_result)) const char *gw_key_online_users(char *buf, size_t len,
                                                                    const char *prefix);
/* "<prefix>control": the channel every node listens on for operator commands
 * (chat-admin kick, delete-room, purge; docs/protocol.md). */
__attribute__((warn_unused_result)) const char *gw_key_control(char *buf, size_t len,
                                                               const char *prefix);
/*
 * Redis Cluster runs a script only when every key it touches hashes to one
 * slot.  The global keys are laid out for that: the rooms indexes share the
 * slot of "<prefix>rooms" and the online bookkeeping that of "<prefix>online"
 * (their names end in "{<prefix>rooms}" or "{<prefix>online}", a hash tag
 * equal to the name of the key whose slot they join).
 */

/* "<prefix>rooms:names{<prefix>rooms}" (every room name, score 0, to page by
 * name) and "<prefix>rooms:popular{<prefix>rooms}" (room -> users present, for
 * the welcome list). */
__attribute__((warn_unused_result)) const char *gw_key_room_names(char *buf, size_t len,
                                                                  const char *prefix);
__attribute__((warn_unused_result)) const char *gw_key_rooms_popular(char *buf, size_t len,
                                                                     const char *prefix);
/* "<prefix>room:{ROOM}" (the room's channel) when what is NULL, else
 * "<prefix>room:{ROOM}:<what>" (seq, history, members ...). */
__attribute__((warn_unused_result)) const char *
gw_key_room(char *buf, size_t len, const char *prefix, const char *room, const char *what);

/* "<prefix>room:{ROOM}:holders:<UID>": the nodes keeping uid in the room. */
__attribute__((warn_unused_result)) const char *
gw_key_room_holders(char *buf, size_t len, const char *prefix, const char *room, const char *uid);

/* "<prefix>user:{UID}" (the user's hash, and the name of its channel) when
 * what is NULL, else "<prefix>user:{UID}:<what>" (dms, nodes). */
__attribute__((warn_unused_result)) const char *
gw_key_user(char *buf, size_t len, const char *prefix, const char *uid, const char *what);

/* True for a room's or a user's channel ("<prefix>room:{ROOM}",
 * "<prefix>user:{UID}"): on a Redis Cluster those are sharded channels, in
 * the slot of their hash tag.  Every other channel (all, control, probe) is
 * not. */
bool gw_key_channel_sharded(const char *prefix, const char *channel);

/* "<prefix>dm:{A:B}:<what>" for the conversation of users a and b, in either
 * order (A < B, comparing bytes). */
__attribute__((warn_unused_result)) const char *gw_key_dm(char *buf, size_t len, const char *prefix,
                                                          const char *a, const char *b,
                                                          const char *what);

/* The idempotency key of request id `id` by uid in a room (room != NULL) or
 * in the conversation with `peer`.  The id appears as a SHA-1 digest, so
 * every valid id (64 code points, up to 256 bytes) gives a key of one size
 * and no two ids share one. */
__attribute__((warn_unused_result)) const char *
gw_key_idempotency(char *buf, size_t len, const char *prefix, const char *room, const char *uid,
                   const char *peer, const char *id);

/* "<prefix>nick:{folded}" of a nickname; NULL also when it cannot be folded. */
__attribute__((warn_unused_result)) const char *gw_key_nick(char *buf, size_t len,
                                                            const char *prefix, const char *nick);

/* "<prefix>login:{ADDR}:<minute>": logins from one client address in one
 * minute (a counter with a TTL), for --login-rate across every node. */
__attribute__((warn_unused_result)) const char *
gw_key_login_rate(char *buf, size_t len, const char *prefix, const char *addr, long minute);

/* "<prefix>rooms:active{<prefix>rooms}": room -> last use (ms), what the room
 * sweeper walks. */
__attribute__((warn_unused_result)) const char *gw_key_rooms_active(char *buf, size_t len,
                                                                    const char *prefix);
/* "<prefix>rooms:created:<UID>:<hour>{<prefix>rooms}": rooms uid created in
 * that hour (counted by room_create.lua, in the rooms hash's slot). */
__attribute__((warn_unused_result)) const char *
gw_key_room_quota(char *buf, size_t len, const char *prefix, const char *uid, long hour);

/* "<prefix>probe:{NODE}": the channel a node publishes its delivery probe on
 * (and alone subscribes). */
__attribute__((warn_unused_result)) const char *gw_key_probe(char *buf, size_t len,
                                                             const char *prefix, const char *node);

/* "<prefix>node:{NODE}": a node's heartbeat. */
__attribute__((warn_unused_result)) const char *gw_key_node(char *buf, size_t len,
                                                            const char *prefix, const char *node);

#endif
