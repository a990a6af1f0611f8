#!/usr/bin/env bash
# `dsv4 serve`'s transport flags take effect on a live server, checked over raw sockets (bash's
# /dev/tcp): --header-timeout closes a connection that never finishes its head, and
# --max-connections answers 503 past the cap. Usage: serve_transport_flags.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/live_server.sh"
WORK=$(mktemp -d)
"$DSV4" serve -m "$ROOT/models/dsv4-demo" --skip-verify --port 0 --header-timeout 1 --max-connections 3 \
  >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_for_serve_port "$WORK/server.log" "$PID" serve_transport_flags

# A head that never ends: the server closes the connection after about 1 s (not the default 10).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /hea' >&3
start=$SECONDS
timeout 8 cat <&3 >/dev/null || { echo "the connection was not closed by --header-timeout 1"; exit 1; }
elapsed=$((SECONDS - start))
exec 3<&-
[ "$elapsed" -le 4 ] || { echo "--header-timeout 1 closed the connection only after ${elapsed}s"; exit 1; }

# Three connections open: a fourth gets 503.
exec 4<>"/dev/tcp/127.0.0.1/$PORT" 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT"
sleep 0.3
exec 7<>"/dev/tcp/127.0.0.1/$PORT"
read -r -t 5 status_line <&7 || true
case "$status_line" in
  "HTTP/1.1 503"*) ;;
  *) echo "a 4th connection past --max-connections 3 got: '${status_line:-nothing}'"; exit 1 ;;
esac
exec 4<&- 5<&- 6<&- 7<&-
echo "serve_transport_flags: ok (head deadline after ${elapsed}s, 503 past the connection cap)"
