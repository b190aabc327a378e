/* libFuzzer target: the notify request model (notify_req_parse) and channel rules
 * (store_channel_rule_valid, apps_rule_eval) on arbitrary bytes: no crash, no leak, and
 * a parsed request always satisfies the model's bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/apps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct notify_req r;
    char err[256];
    str in = str_make((const char *)data, size);
    if (notify_req_parse(in, 604800, &r, err, sizeof err) == 0) {
        if (!r.text || strlen(r.text) == 0 || strlen(r.text) > NOTIFY_TEXT_MAX ||
            r.nto > NOTIFY_MAX_LIST || r.ttl > 604800 || (r.target == NOTIFY_LIST && !r.nto))
            abort();
        for (size_t i = 0; i < r.nto; i++)
            if (!r.to[i] || !r.to[i][0])
                abort();
        notify_req_free(&r);
    }
    if (store_channel_rule_valid(in)) {
        struct chan_who u = {.kind = CHAN_WHO_USER, .name = "alice"};
        int rc = apps_rule_eval(in, &u, ",staff,");
        if (rc != 0 && rc != 1)
            abort();
    }
    return 0;
}
