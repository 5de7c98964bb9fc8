/*
 * The gateway's server-side Lua scripts, embedded at build time from the .lua files of
 * gateway/lua by embed.cmake. Each is loaded once with SCRIPT LOAD and run with EVALSHA; the
 * KEYS/ARGV contract of each script is the comment block at the top of its .lua file.
 *
 * The strings are the files byte for byte, NUL-terminated, static and read-only.
 */
#ifndef GW_LUA_SCRIPTS_H
#define GW_LUA_SCRIPTS_H

#include <stddef.h>

extern const char *const gw_lua_history_range;
extern const char *const gw_lua_history_since;
extern const char *const gw_lua_message_edit;
extern const char *const gw_lua_nick_claim;
extern const char *const gw_lua_post;
extern const char *const gw_lua_presence_add;
extern const char *const gw_lua_presence_expired;
extern const char *const gw_lua_presence_online;
extern const char *const gw_lua_presence_reap;
extern const char *const gw_lua_presence_remove;
extern const char *const gw_lua_reaction_toggle;
extern const char *const gw_lua_read_mark;
extern const char *const gw_lua_room_create;
extern const char *const gw_lua_room_idle;
extern const char *const gw_lua_room_sweep;
extern const char *const gw_lua_rooms;
extern const char *const gw_lua_users;

/* One embedded script: name is the file name without ".lua" (e.g. "presence_add"). */
struct gw_lua_script {
    const char *name;
    const char *source;
};

/* Every embedded script, sorted by name; gw_lua_script_count entries. */
extern const struct gw_lua_script gw_lua_scripts[];
extern const size_t gw_lua_script_count;

#endif /* GW_LUA_SCRIPTS_H */
