/*
 * writer_call.h - one question to the writer on behalf of a request: the op goes
 * over the admin socket (proto.h frames, admin_msg.h messages) without blocking the
 * worker's loop, and the reply comes back to the handler that asked (writer_call.c).
 */
#ifndef TEMPORIS_HTTP_WRITER_CALL_H
#define TEMPORIS_HTTP_WRITER_CALL_H

struct handler_env;
struct http_req;
struct json_object;

/* Answers req from a successful reply (borrowed: valid during the call only). */
typedef void writer_reply_fn(struct handler_env *env, struct http_req *req,
			     struct json_object *reply);

/*
 * Ask the writer op on behalf of req; consumes op (NULL means out of memory: 500).
 * A successful reply goes to on_reply; an error reply is answered with its code's
 * status and message (a failure shows no text: 500); an unreachable or silent writer
 * is a 503. A client that leaves first never sees the reply.
 */
void writer_ask(struct handler_env *env, struct http_req *req, struct json_object *op,
		writer_reply_fn *on_reply);

/*
 * Ask an op that answers with a body (admin_body_reply): the body is relayed unparsed,
 * with the writer's status, as content_type. Error replies and failures as writer_ask.
 */
void writer_ask_body(struct handler_env *env, struct http_req *req, struct json_object *op,
		     const char *content_type);

#endif
