/*
 * writer_call.h - one question to the writer on behalf of a request: the op goes
 * over the admin socket (proto.h frames, admin_msg.h messages) without blocking the
 * worker's loop, and the reply comes back to the handler that asked (writer_call.c).
 */
#ifndef TEMPORIS_HTTP_WRITER_CALL_H
#define TEMPORIS_HTTP_WRITER_CALL_H

#include <stdbool.h>

struct handler_env;
struct http_req;
struct json_object;
struct writer_call;

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
/* Answer req from an error reply of the writer, as writer_ask does. */
void writer_respond_error(struct http_req *req, struct json_object *reply);

/*
 * A long job asking many questions one after another (an export's pages) holds one of
 * this worker's writer connections for its whole life: false when none is free (the
 * caller answers 503). Each slot taken is released once.
 */
bool writer_slot_take(struct handler_env *env);
void writer_slot_release(struct handler_env *env);

/* The reply (borrowed, during the call), or NULL: the writer could not be reached, did
 * not answer in time, or answered nonsense. */
typedef void writer_done_fn(void *arg, struct json_object *reply);
/*
 * Ask op (consumed) under a slot the caller holds; done is called once, from the loop,
 * unless the call is cancelled first. NULL when the call cannot start (done is then
 * never called).
 */
struct writer_call *writer_call_start(struct handler_env *env, struct json_object *op,
				      writer_done_fn *done, void *arg);
/* Drop a call in flight: done is not called. NULL is fine. */
void writer_call_cancel(struct writer_call *c);

/*
 * Ask an op that answers with a body (admin_body_reply): the body is relayed unparsed,
 * with the writer's status, as content_type. Error replies and failures as writer_ask.
 */
void writer_ask_body(struct handler_env *env, struct http_req *req, struct json_object *op,
		     const char *content_type);

#endif
