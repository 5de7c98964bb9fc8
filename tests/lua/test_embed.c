/* The embedding: every script is in the table, byte for byte the .lua file, and compiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_scripts.h"
#include "lua_test.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)size + 1);
    if (buf == NULL)
        goto out;
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[size] = '\0';
    *len = (size_t)size;
out:
    fclose(f);
    return buf;
}

START_TEST(table_lists_every_script)
{
    static const char *const names[] = {
        "history_range", "history_since",   "message_edit",     "nick_claim",
        "post",          "presence_add",    "presence_expired", "presence_online",
        "presence_reap", "presence_remove", "reaction_toggle",  "read_mark",
        "room_create",   "room_idle",       "room_sweep",       "rooms",
        "users"};
    const char *const named[] = {gw_lua_history_range,
                                 gw_lua_history_since,
                                 gw_lua_message_edit,
                                 gw_lua_nick_claim,
                                 gw_lua_post,
                                 gw_lua_presence_add,
                                 gw_lua_presence_expired,
                                 gw_lua_presence_online,
                                 gw_lua_presence_reap,
                                 gw_lua_presence_remove,
                                 gw_lua_reaction_toggle,
                                 gw_lua_read_mark,
                                 gw_lua_room_create,
                                 gw_lua_room_idle,
                                 gw_lua_room_sweep,
                                 gw_lua_rooms,
                                 gw_lua_users};

    ck_assert_uint_eq(gw_lua_script_count, sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < gw_lua_script_count; i++) {
        ck_assert_str_eq(gw_lua_scripts[i].name, names[i]);
        ck_assert_ptr_eq(gw_lua_scripts[i].source, named[i]);
    }
}
END_TEST

START_TEST(sources_match_files)
{
    for (size_t i = 0; i < gw_lua_script_count; i++) {
        char path[4096];
        size_t len = 0;
        char *text;

        snprintf(path, sizeof(path), "%s/%s.lua", GW_LUA_SOURCE_DIR, gw_lua_scripts[i].name);
        text = read_file(path, &len);
        ck_assert_msg(text != NULL, "cannot read %s", path);
        ck_assert_uint_eq(strlen(gw_lua_scripts[i].source), len);
        ck_assert_msg(memcmp(gw_lua_scripts[i].source, text, len) == 0, "%s differs", path);
        free(text);
    }
}
END_TEST

START_TEST(scripts_load)
{
    redisContext *c = lua_test_connect();

    for (size_t i = 0; i < gw_lua_script_count; i++) {
        redisReply *r = CMD(c, "SCRIPT", "LOAD", gw_lua_scripts[i].source);

        ck_assert_msg(r->type == REDIS_REPLY_STRING && r->len == 40, "%s: %s",
                      gw_lua_scripts[i].name, r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
    }
    redisFree(c);
}
END_TEST

TCase *embed_tcase(void)
{
    TCase *tc = tcase_create("embed");

    tcase_add_test(tc, table_lists_every_script);
    tcase_add_test(tc, sources_match_files);
    tcase_add_test(tc, scripts_load);
    return tc;
}
