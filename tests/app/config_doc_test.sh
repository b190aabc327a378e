#!/usr/bin/env bash
# docs/configuration.md is the configuration reference: it must list every key
# rtcd knows, with its default (regenerate with tools/gen_config_doc.py).
. "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
python3 "$root/tools/gen_config_doc.py" "$RTCD" >"$T/want.md"
if diff -u "$root/docs/configuration.md" "$T/want.md" >"$T/diff"; then
    ok "docs/configuration.md matches the directive table"
else
    not_ok "docs/configuration.md matches the directive table" "$(head -20 "$T/diff")"
fi
finish
