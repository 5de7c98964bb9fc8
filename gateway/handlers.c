#include <jansson.h>

#include "bus.h"
#include "handlers.h"
#include "protocol.h"
#include "session.h"

static bool needs_redis(enum chat_req_type t)
{
    return t != CHAT_REQ_PING && t != CHAT_REQ_LEAVE;
}

static void reply_pong(struct gw_session *s, const struct chat_request *req)
{
    json_t *r = gw_reply_new("pong", req->id);
    json_object_set_new(r, "ts", json_integer(gw_now_ms()));
    gw_session_send_json(s, r);
}

void gw_handlers_dispatch(struct gw_session *s, struct chat_request *req)
{
    if (needs_redis(req->type) && !gw_bus_up(gw_session_ctx(s)->bus)) {
        gw_session_send_error(s, req->id, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        chat_request_deinit(req);
        return;
    }
    switch (req->type) {
    case CHAT_REQ_PING:
        reply_pong(s, req);
        break;
    case CHAT_REQ_LEAVE:
        gw_handle_leave(s, req);
        break;
    case CHAT_REQ_TYPING:
        gw_handle_typing(s, req);
        break;
    case CHAT_REQ_JOIN:
        gw_handle_join(s, req);
        break;
    case CHAT_REQ_MESSAGE:
        gw_handle_message(s, req);
        break;
    case CHAT_REQ_PRIVATE:
        gw_handle_private(s, req);
        break;
    case CHAT_REQ_HISTORY:
        gw_handle_history(s, req);
        break;
    case CHAT_REQ_SEARCH:
        gw_handle_search(s, req);
        break;
    case CHAT_REQ_ROOMS:
        gw_handle_rooms(s, req);
        break;
    case CHAT_REQ_CREATE_ROOM:
        gw_handle_create_room(s, req);
        break;
    case CHAT_REQ_USERS:
        gw_handle_users(s, req);
        break;
    case CHAT_REQ_BROADCAST:
        gw_handle_broadcast(s, req);
        break;
    case CHAT_REQ_READ:
        gw_handle_read(s, req);
        break;
    case CHAT_REQ_EDIT:
    case CHAT_REQ_DELETE:
        gw_handle_edit(s, req);
        break;
    case CHAT_REQ_REACT:
        gw_handle_react(s, req);
        break;
    default:
        gw_session_send_error(s, req->id, CHAT_ERR_BAD_REQUEST, "unknown type");
        break;
    }
    /* Handlers that started an operation moved req into it (zeroed here). */
    chat_request_deinit(req);
}
