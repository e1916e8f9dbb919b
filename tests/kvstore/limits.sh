#!/usr/bin/env bash
# tests/kvstore/limits.sh KVSTORE — the kvstore's flags that the script
# cannot show: --maxclients (one client too many gets Redis's error and is
# closed; a client gets in again once one has left), --timeout (an idle
# client is closed; wide margins: 1 s timeout, 10 s allowed), --unix (a
# Unix-domain socket, removed at exit), --observe (the observability
# endpoint), --help and a bad flag. Clients are bash's
# /dev/tcp and the server's own answers; every wait is bounded.
set -euo pipefail
kv=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "limits.sh: $*" >&2; exit 1; }

# start NAME ARGS...: the kvstore on an ephemeral port; sets port and pid
start() {
  local name=$1; shift
  "$kv" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do
    if [ -s "$tmp/$name.out" ]; then break; fi
    sleep 0.05
  done
  port=$(sed -n '1s/^kvstore: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.out")
}

# stop: SIGTERM, and it must exit 0 within 10 s
stop() {
  kill -TERM "$pid"
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && fail "the server did not stop within 10 s"
  wait "$pid" || fail "the server exited with status $?"
}

# ask FD: sends PING on the open descriptor FD, prints the first line back
ask() {
  printf 'PING\r\n' >&"$1"
  local line=''
  IFS= read -r -t 10 line <&"$1" || true
  printf '%s' "${line%$'\r'}"
}

# 1. --maxclients 2
start max --port 0 --threads 2 --maxclients 2
[ -n "$port" ] || fail "--maxclients: no port in: $(cat "$tmp/max.out")"
exec 3<>"/dev/tcp/127.0.0.1/$port" 4<>"/dev/tcp/127.0.0.1/$port"
[ "$(ask 3)" = "+PONG" ] || fail "--maxclients 2: the first client is not served"
[ "$(ask 4)" = "+PONG" ] || fail "--maxclients 2: the second client is not served"
exec 5<>"/dev/tcp/127.0.0.1/$port"
line=''
IFS= read -r -t 10 line <&5 || true
[ "${line%$'\r'}" = "-ERR max number of clients reached" ] ||
  fail "--maxclients 2: the third client got '${line}', not Redis's error"
IFS= read -r -t 10 line <&5 && fail "--maxclients 2: the third client was not closed"
exec 5>&- 3>&-
ok=''
for _ in $(seq 1 100); do # the first has left: a new client gets in
  exec 6<>"/dev/tcp/127.0.0.1/$port"
  if [ "$(ask 6)" = "+PONG" ]; then ok=1; exec 6>&-; break; fi
  exec 6>&-
  sleep 0.1
done
[ -n "$ok" ] || fail "--maxclients 2: no client got in after one left"
exec 4>&-
stop
echo "limits.sh: --maxclients 2: a third client got Redis's error and was closed; one got in after a client left"

# 2. --timeout 1: an idle client is closed (between 1 and 10 s), an active one not
start idle --port 0 --threads 1 --timeout 1
exec 3<>"/dev/tcp/127.0.0.1/$port"
[ "$(ask 3)" = "+PONG" ] || fail "--timeout: the client is not served"
t0=$(date +%s%N)
IFS= read -r -t 10 line <&3 && fail "--timeout 1: the idle client got '$line', not its end"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -lt 900 ] || [ "$ms" -ge 10000 ]; then fail "--timeout 1: closed after $ms ms"; fi
exec 3>&-
stop
echo "limits.sh: --timeout 1: an idle client was closed after $ms ms"

# 3. --unix PATH (its file removed at exit)
sock="$tmp/kv.sock"
start unix --unix "$sock" --threads 2
grep -q "^kvstore: listening on unix:$sock" "$tmp/unix.out" || fail "--unix: $(cat "$tmp/unix.out")"
if command -v redis-cli >/dev/null 2>&1; then
  [ "$(redis-cli -s "$sock" SET u v)" = "OK" ] || fail "--unix: SET"
  [ "$(redis-cli -s "$sock" GET u)" = "v" ] || fail "--unix: GET"
fi
stop
[ ! -e "$sock" ] || fail "--unix: the socket file is left after the exit"
echo "limits.sh: --unix: served, and its file removed at exit"

# 4. --observe 127.0.0.1:0: the endpoint (docs/observability.md) shows the
# kvstore's actors in /tree.json and its metrics in /metrics; an address
# already taken is exit 1
start obs --port 0 --threads 2 --observe 127.0.0.1:0
for _ in $(seq 1 200); do grep -q '^observe: http://' "$tmp/obs.err" && break; sleep 0.05; done
oport=$(sed -n 's|^observe: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/obs.err")
[ -n "$oport" ] || fail "--observe: no address in: $(cat "$tmp/obs.err")"
exec 3<>"/dev/tcp/127.0.0.1/$port"
[ "$(ask 3)" = "+PONG" ] || fail "--observe: the kvstore does not serve"
# get PATH: the body of GET PATH (Connection: close: read to the end)
get() {
  exec 7<>"/dev/tcp/127.0.0.1/$oport"
  printf 'GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$1" >&7
  timeout 10 cat <&7 || true
  exec 7>&-
}
tree=$(get /tree.json)
case "$tree" in *'"behavior":"supervisor"'*) ;; *) fail "--observe: /tree.json has no supervisor: $tree" ;; esac
case "$tree" in *'"truncated":false'*) ;; *) fail "--observe: /tree.json: $tree" ;; esac
metrics=$(get /metrics)
case "$metrics" in *'troupe_socket_received_bytes_total '*) ;; *) fail "--observe: /metrics: $metrics" ;; esac
exec 3>&-
set +e
"$kv" --port 0 --observe "127.0.0.1:$oport" >/dev/null 2>"$tmp/taken.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--observe on a taken address: exit $rc, not 1"
stop
echo "limits.sh: --observe: /tree.json and /metrics served; a taken address is exit 1"

# 5. --help lists the commands and the limits; a bad flag is exit 2
"$kv" --help >"$tmp/help" || fail "--help: exit $?"
for word in get mset expire keys "512 MiB" maxclients; do
  grep -q -- "$word" "$tmp/help" || fail "--help does not mention $word"
done
set +e
"$kv" --threads 0 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--threads 0: exit $rc, not 2"
echo "limits.sh: --help and a bad flag: ok"
