/*
 * svc/apps_http — the apps' routes and WebSocket endpoints on the HTTP server
 * (/api/v1/notify, /api/v1/notify/{id}, /api/v1/channels/{name}/publish,
 * /api/v1/channels/ws, /api/v1/bot/ws). docs/apps.md.
 */
#ifndef RTCD_SVC_APPS_HTTP_H
#define RTCD_SVC_APPS_HTTP_H

struct apps;
struct apps_http;
struct http_server;

/*
 * Adds the routes to hs (before the workers start); the handlers use a and hs for the
 * life of *out. 0 or a negative errno from the route table.
 */
int apps_http_register(struct apps_http **out, struct apps *a, struct http_server *hs);
/* After the workers stopped. NULL is fine. */
void apps_http_free(struct apps_http *ah);

#endif
