#include <string.h>

#include <jansson.h>

#include "chat_client.h"

/* The two lists of a presence_batch never name one user twice, so the order
 * between them does not matter; within each it is the gateway's. */
static int each_in(const json_t *list, bool online, chat_presence_cb fn, void *arg)
{
    size_t i;
    const json_t *user;
    int n = 0;

    json_array_foreach(list, i, user)
    {
        if (json_is_object(user)) {
            fn(user, online, arg);
            n++;
        }
    }
    return n;
}

int chat_presence_each(const json_t *frame, chat_presence_cb fn, void *arg)
{
    const char *type = json_string_value(json_object_get(frame, "type"));
    const json_t *user;

    if (!type)
        return -1;
    if (strcmp(type, "online") == 0 || strcmp(type, "offline") == 0) {
        user = json_object_get(frame, "user");
        if (!json_is_object(user))
            return 0;
        fn(user, type[1] == 'n', arg);
        return 1;
    }
    if (strcmp(type, "presence_batch") != 0)
        return -1;
    return each_in(json_object_get(frame, "online"), true, fn, arg) +
           each_in(json_object_get(frame, "offline"), false, fn, arg);
}
