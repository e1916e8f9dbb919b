#!/usr/bin/env bash
# cli.sh — tests/kvstore/cases.txt through redis-cli: the plain commands of
# the script (not its !raw / !send bytes, not its pipelines, not what is
# @kvstore-only, not QUIT, which ends redis-cli) go through one redis-cli
# per server, against the server under test and against a real
# redis-server, and the two outputs must be the same, but for what may
# differ: TTL / PTTL values (not -1 / -2), INFO's and COMMAND's content.
# KEYS's elements are compared in any order. The @sleep directives are kept.
#
#   cli.sh [SERVER [REDIS_SERVER]]
#
# SERVER is the kvstore (started as `SERVER --port 0 --threads 2`, its port
# read from its first stdout line) or, when its name starts with
# "redis-server", another redis-server; REDIS_SERVER is the reference. Both default
# to the redis-server on the PATH (the script checking itself). Exits 77
# (ctest's skip) when redis-cli or redis-server is missing. CASES=FILE runs
# another script; KEEP_TMP=1 keeps the outputs (their folder is printed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cases=${CASES:-$here/cases.txt}
server=${1:-$(command -v redis-server || true)}
redis=${2:-$(command -v redis-server || true)}
cli=$(command -v redis-cli || true)
if [ -z "$cli" ] || [ -z "$redis" ] || [ ! -x "$redis" ]; then
  echo "cli.sh: redis-cli or redis-server not found: SKIP" >&2
  exit 77
fi
if [ -z "$server" ] || [ ! -x "$server" ]; then
  echo "cli.sh: no server to test: ${server:-(none)}" >&2
  exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ -n "${KEEP_TMP:-}" ]; then
    echo "cli.sh: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

fail() {
  echo "cli.sh: $*" >&2
  exit 1
}

# start_redis PATH NAME: a redis-server on a free port; sets port_NAME.
start_redis() {
  local path=$1 name=$2 port pid i
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    "$path" --port "$port" --save '' --appendonly no --bind 127.0.0.1 \
      --databases 1 --loglevel warning >"$tmp/$name.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      # the answer must come from this process (not another on the port)
      if "$cli" -h 127.0.0.1 -p "$port" INFO server 2>/dev/null | grep -q "^process_id:$pid"; then
        pids+=("$pid")
        printf -v "port_$name" '%s' "$port"
        return 0
      fi
      sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cat "$tmp/$name.log" >&2
  fail "$path did not start"
}

# start_kvstore PATH NAME: sets port_NAME from its first stdout line.
start_kvstore() {
  local path=$1 name=$2 pid line i
  "$path" --port 0 --threads 2 >"$tmp/$name.stdout" 2>"$tmp/$name.log" &
  pid=$!
  pids+=("$pid")
  for ((i = 0; i < 200; i++)); do
    if [ "$(wc -l <"$tmp/$name.stdout")" -ge 1 ]; then
      line=$(head -n 1 "$tmp/$name.stdout")
      case "$line" in
        "kvstore: listening on 127.0.0.1:"[0-9]*) ;;
        *) fail "$path: its first line is not \"kvstore: listening on 127.0.0.1:PORT...\": $line" ;;
      esac
      line=${line#kvstore: listening on 127.0.0.1:}
      printf -v "port_$name" '%s' "${line%%[!0-9]*}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; fail "$path exited before its first line"; }
    sleep 0.05
  done
  fail "$path printed no first line within 10 s"
}

# The script, cut at its sleeps: seg.0, seg.1, ... (an ECHO marker before
# each case), sleeps (one per cut), and map (line, command name, text).
awk -v dir="$tmp" '
function rep(c, n,   s) {
  s = ""
  while (n > 0) { if (n % 2) s = s c; c = c c; n = int(n / 2) }
  return s
}
function expand(s,   out, tok, star) {
  out = ""
  while (match(s, /[{][{][0-9]+[*][^}][}][}]/)) {
    tok = substr(s, RSTART + 2, RLENGTH - 4)
    star = index(tok, "*")
    out = out substr(s, 1, RSTART - 1) rep(substr(tok, star + 1, 1), substr(tok, 1, star - 1) + 0)
    s = substr(s, RSTART + RLENGTH)
  }
  return out s
}
BEGIN { seg = 0; printf "" > (dir "/seg.0"); printf "" > (dir "/sleeps") }
{ sub(/^[ \t]+/, ""); sub(/[ \t\r]+$/, "") }
/^$/ || /^#/ { next }
/^@kvstore-only/ { skip = 1; next }
/^@redis-only/ { skip = 1; next }
/^@pipeline/ { inpipe = 1; next }
/^@end/ { inpipe = 0; skip = 0; next }
/^@sleep/ { seg++; printf "" > (dir "/seg." seg); print $2 > (dir "/sleeps"); next }
/^[@!]/ { if (!inpipe) skip = 0; next }
{
  if (inpipe) next
  if (skip) { skip = 0; next }
  cmd = substr($0, 1, index($0, " => ") - 1)
  name = toupper(cmd); sub(/[ \t].*/, "", name)
  if (name == "QUIT") next
  print "ECHO \"@@case " NR "\"" > (dir "/seg." seg)
  print expand(cmd) > (dir "/seg." seg)
  print NR "\t" name "\t" cmd > (dir "/map")
}' "$cases"

# run NAME: the script through redis-cli against port_NAME, normalized.
run() {
  local name=$1 port_var="port_$1" i=0 ms
  {
    cat "$tmp/seg.0"
    while read -r ms; do
      sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
      i=$((i + 1))
      cat "$tmp/seg.$i"
    done <"$tmp/sleeps"
  } | "$cli" -h 127.0.0.1 -p "${!port_var}" --no-raw >"$tmp/$name.raw" 2>&1
  awk -F '\t' '
  FNR == NR { nm[$1] = $2; text[$1] = $3; next }
  function flush(   i, j, t, out) {
    if (cur == "") {
      for (i = 1; i <= n; i++) print "(before the first case) " lines[i]
      n = 0
      return
    }
    if ((nm[cur] == "TTL" || nm[cur] == "PTTL") && n == 1 && lines[1] ~ /^\(integer\) [0-9]+$/)
      lines[1] = "(integer) <a TTL>"
    if (nm[cur] == "INFO" && !(n >= 1 && lines[1] ~ /^\(error\)/)) { n = 1; lines[1] = "<INFO text>" }
    if (nm[cur] == "COMMAND" && n >= 1 && lines[1] ~ /^ *1\) /) { n = 1; lines[1] = "<an array>" }
    if (nm[cur] == "KEYS") {
      for (i = 1; i <= n; i++) sub(/^ *[0-9]+\) /, "", lines[i])
      for (i = 2; i <= n; i++) {
        t = lines[i]
        for (j = i - 1; j >= 1 && lines[j] > t; j--) lines[j + 1] = lines[j]
        lines[j + 1] = t
      }
    }
    out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? " | " : "") lines[i]
    print "line " cur ": " text[cur] "  =>  " out
    n = 0
  }
  /^"@@case [0-9]+"$/ { flush(); cur = $0; gsub(/[^0-9]/, "", cur); next }
  /^\([0-9]+[.][0-9]+s\)$/ { next } # redis-cli times what takes 0.5 s or more
  { lines[++n] = $0 }
  END { flush() }' "$tmp/map" "$tmp/$name.raw" >"$tmp/$name.out"
}

start=$(date +%s)
case "$(basename "$server")" in
  redis-server*) is_redis=1 ;;
  *) is_redis= ;;
esac
if [ -n "$is_redis" ]; then
  start_redis "$server" tested
else
  start_kvstore "$server" tested
fi
start_redis "$redis" reference

run tested &
run_tested=$!
run reference
wait "$run_tested"

ncases=$(wc -l <"$tmp/map")
if ! cmp -s "$tmp/tested.out" "$tmp/reference.out"; then
  echo "cli.sh: $server differs from $redis through redis-cli (- $server, + redis-server):" >&2
  diff -u "$tmp/tested.out" "$tmp/reference.out" | cut -c 1-400 | head -n 200 >&2 || true
  exit 1
fi
[ "$(wc -l <"$tmp/tested.out")" -eq "$ncases" ] || fail "$ncases cases, but $(wc -l <"$tmp/tested.out") answers"
echo "cli.sh: $ncases cases through redis-cli: $server answers as $redis ($(($(date +%s) - start)) s)"
