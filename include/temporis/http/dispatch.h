/*
 * dispatch.h - the worker's HTTP callbacks (dispatch.c): every request is matched in
 * the route table, authenticated when its row asks, handed to the row's handlers,
 * and its answer counted in /metrics under the row's label.
 */
#ifndef TEMPORIS_HTTP_DISPATCH_H
#define TEMPORIS_HTTP_DISPATCH_H

#include "temporis/http/server.h"

/* For http_server_new(base, fd, limits, &dispatch_ops, env); arg is a struct handler_env *. */
extern const struct http_handler_ops dispatch_ops;

#endif
