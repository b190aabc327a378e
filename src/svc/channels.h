/*
 * svc/channels — the publish/subscribe hub behind /api/v1/channels: named
 * channels, subscribers (WebSocket connections of browsers and apps, SIP users
 * who joined), one ordered stream of messages per channel.
 *
 * Pure logic, thread-safe, no I/O: a publish formats the message once, gives it
 * a per-channel sequence number and appends a reference to every live
 * subscriber's bounded queue, all under the channel's lock, so every subscriber
 * sees a channel's messages in the same order. The subscriber's owner is woken
 * (ops->wake) when its queue becomes non-empty and drains it with chan_sub_pop
 * at its own pace. A subscriber whose queue is full when a message arrives is
 * dropped from every channel at once and told why (ops->closed); publishers and
 * the other subscribers never wait for it.
 *
 * Who may subscribe or publish is decided before calling in (apps.c, rules from
 * the store); the hub only keeps the streams.
 */
#ifndef RTCD_SVC_CHANNELS_H
#define RTCD_SVC_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

struct chan_hub;
struct chan_sub;

struct chan_limits {
    uint32_t max_queue;        /* messages queued per subscriber before it is dropped (0 = 256) */
    uint32_t max_subs;         /* subscriptions per subscriber (0 = 64) */
    uint32_t max_channel_subs; /* subscribers per channel (0 = 100000) */
    uint32_t max_payload;      /* bytes of a published payload (0 = 64 KiB) */
};

/* A formatted message shared by every queue it is in (counted reference). */
struct chan_msg {
    uint64_t seq;     /* per channel, from 1 */
    size_t len;       /* of data */
    const char *data; /* {"op":"message","channel":...,"seq":...,"from":...,"data":...} */
    str channel;      /* inside data's allocation */
    str payload;      /* the published JSON value, inside data */
};

/* The subscriber's owner; both callbacks may run on any thread, under the hub's locks:
 * post to the owner's loop and return. */
struct chan_sub_ops {
    void (*wake)(void *ctx);                       /* the queue became non-empty */
    void (*closed)(void *ctx, const char *reason); /* dropped (slow); free with chan_sub_free */
};

/* A new hub. 0 or -ENOMEM. */
int chan_hub_new(struct chan_hub **out, const struct chan_limits *lim);
/* Frees the hub; every subscriber must have been freed. NULL is fine. */
void chan_hub_free(struct chan_hub *h);

/* A new subscriber with no subscriptions. 0 or -ENOMEM. */
int chan_sub_new(struct chan_sub **out, struct chan_hub *h, const struct chan_sub_ops *ops,
                 void *ctx);
/* Leaves every channel, drops the queue and frees s. Call from the owner only. NULL is fine. */
void chan_sub_free(struct chan_sub *s);
/*
 * Subscribes s to channel (a valid name: store_name_valid). 0, -EALREADY (already
 * subscribed), -EMLINK (s has max_subs), -EUSERS (the channel has max_channel_subs),
 * -EPIPE (s was dropped), -ENOMEM. The next message s gets is the channel's next publish.
 */
int chan_subscribe(struct chan_sub *s, str channel);
/* 0 or -ENOENT (not subscribed). */
int chan_unsubscribe(struct chan_sub *s, str channel);
/*
 * The oldest queued message (a new reference: chan_msg_unref it), or NULL when the
 * queue is empty. Owner only.
 */
struct chan_msg *chan_sub_pop(struct chan_sub *s);
size_t chan_sub_queued(struct chan_sub *s);
bool chan_sub_dropped(struct chan_sub *s);
void chan_msg_unref(struct chan_msg *m);

struct chan_publish_result {
    uint64_t seq;     /* the message's number in its channel */
    size_t delivered; /* subscribers it was queued for */
    size_t dropped;   /* subscribers dropped because their queue was full */
};
/*
 * Publishes payload (a JSON value, already validated by the caller) from "from" (a
 * printable identity without '"' or '\\', e.g. "app:notifier") on channel. 0,
 * -EMSGSIZE (payload over max_payload), -EINVAL (from), -ENOMEM. Never blocks on a
 * subscriber. A channel nobody subscribes to still counts its sequence.
 */
int chan_publish(struct chan_hub *h, str channel, str from, str payload,
                 struct chan_publish_result *out);
/* Subscribers of channel now (0 when unknown). */
size_t chan_count(struct chan_hub *h, str channel);

#endif
