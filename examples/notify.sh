#!/bin/sh
# A notification app in one curl line (docs/apps.md). Create the app once:
#   rtcctl app add alerts --scopes notify        # prints the key on its last line
# then:  RTCD_KEY=... ./notify.sh "bob,group:ops" "disk 91% on db1"
# RTCD_URL defaults to http://127.0.0.1:8080. Prints the JSON answer (id and counts).
set -eu
url=${RTCD_URL:-http://127.0.0.1:8080}
to=$(printf '%s' "$1" | sed 's/[^,][^,]*/"&"/g')
text=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
curl -sS -H "Authorization: Bearer $RTCD_KEY" -H 'Content-Type: application/json' \
  --data "{\"to\":[$to],\"text\":\"$text\",\"priority\":\"high\",\"ttl\":3600}" "$url/api/v1/notify"
echo
