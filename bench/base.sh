# shellcheck shell=bash disable=SC2154
# bench/base.sh — sourced by bench/compare for `--base REV`: troupe at REV
# against troupe now, both built in Release, interleaved over rounds.
# It uses bench/compare's option variables (base, rounds, timeout_s, quick,
# names) and bench/suite.sh's ALL, QUICK and build_release.
#
# REV is built in a temporary git worktree (under $TMPDIR, removed as soon
# as the build is done, or when the run is interrupted); only REV's benchmark
# programs are kept, in build-base/<commit>/, and reused while REV names the
# same commit. One commit is kept at a time: `rm -rf build-base` frees it.
# The programs link libtroupe statically, so the copies stand on their own.

base_tmp=
base_cleanup() {
  [ -n "$base_tmp" ] || return 0
  if [ -d "$base_tmp/src" ]; then
    git worktree remove --force "$base_tmp/src" >/dev/null 2>&1 || true
  fi
  rm -rf "$base_tmp"
  base_tmp=
}

base_die() {
  echo "bench/compare: $*" >&2
  exit 2
}

# base_resolve REV: the commit REV names; sets base_sha, base_short and
# base_bin, or exits 2 saying why there is none.
base_resolve() {
  local rev=$1
  git rev-parse --git-dir >/dev/null 2>&1 ||
    base_die "--base $rev: $PWD is not a git checkout"
  if ! base_sha=$(git rev-parse -q --verify "$rev^{commit}"); then
    if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
      base_die "--base $rev: no such commit in this shallow clone (git fetch --deepen=N, or --unshallow)"
    fi
    base_die "--base $rev: no such commit"
  fi
  base_short=$(git rev-parse --short "$base_sha")
  base_bin=build-base/$base_sha
}

# base_build REV: builds the commit base_resolve found, unless
# build-base/<commit>/ holds it already.
base_build() {
  local rev=$1
  if [ -f "$base_bin/.complete" ]; then
    echo "bench/compare: base $rev ($base_short): reusing $base_bin/" >&2
    return 0
  fi

  echo "bench/compare: base $rev ($base_short): building in a temporary worktree" >&2
  rm -rf build-base
  mkdir -p build-base
  local log=build-base/build-$base_short.log
  base_tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-base.XXXXXX")
  git worktree add -q --detach "$base_tmp/src" "$base_sha" >"$log" 2>&1 ||
    { cat "$log" >&2; base_die "--base $rev: cannot check $base_short out in a worktree"; }
  if ! {
    cmake -S "$base_tmp/src" -B "$base_tmp/build" -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=OFF -DTROUPE_BUILD_TESTS=OFF -DTROUPE_BUILD_EXAMPLES=OFF \
      -DTROUPE_BUILD_BENCH=ON &&
      cmake --build "$base_tmp/build" -j"${JOBS:-2}"
  } >>"$log" 2>&1; then
    tail -n 25 "$log" >&2
    base_die "--base $rev: troupe at $base_short does not build (whole log: $log)"
  fi
  mkdir -p "$base_bin"
  if [ -d "$base_tmp/build/bench" ]; then
    find "$base_tmp/build/bench" -maxdepth 1 -type f -perm -u+x -exec cp {} "$base_bin/" \;
  fi
  [ -n "$(ls -A "$base_bin")" ] ||
    base_die "--base $rev: troupe at $base_short builds no benchmark programs (bench/)"
  echo "$base_sha" >"$base_bin/.complete"
  base_cleanup
}

# run_side SIDE ROUND NAME ARGS...: runs one benchmark program of one build
# and prints its result lines, each with impl=SIDE (base or troupe), rev= and
# round=; a line whose program was not troupe (the bare ck ring next to the
# channels) keeps that as measures=<impl>. A run that times out, prints no
# result or exits non-zero after check=ok adds a check=FAIL line.
run_side() {
  local side=$1 round=$2 name=$3 exe rev out rc envs
  shift 3
  if [ "$side" = base ]; then
    exe=$base_bin/$name rev=$base_short envs=("${base_env[@]}")
  else
    exe=build-release/bench/$name rev=$now_rev envs=("${now_env[@]}")
  fi
  set +e
  out=$(env "${envs[@]}" timeout "$timeout_s" "$exe" "$@" 2>/dev/null)
  rc=$?
  set -e
  printf '%s\n' "$out" | grep '^bench=' |
    awk -v side="$side" -v rev="$rev" -v r="$round" '{
      m = ""
      for (i = 1; i <= NF; i++)
        if ($i ~ /^impl=/) { v = substr($i, 6); if (v != "troupe") m = " measures=" v; $i = "impl=" side }
      print $0 m " rev=" rev " round=" r
    }' || true
  local why=
  if [ $rc -eq 124 ]; then why=timeout_${timeout_s}s
  elif ! printf '%s\n' "$out" | grep -q '^bench='; then why="no_output rc=$rc"
  elif [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep '^bench=' | grep -qv 'check=ok'; then why=exit_status_$rc
  fi
  [ -z "$why" ] || echo "bench=$name impl=$side check=FAIL reason=$why rev=$rev round=$round"
}

compare_base() {
  local rev=$base name side r
  rounds=${rounds:-10}
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
  base_resolve "$rev"
  build_release
  for name in "${names[@]}"; do
    [ -x "build-release/bench/$name" ] || base_die "no benchmark '$name' (the names: ${ALL[*]})"
  done
  trap 'base_cleanup' EXIT
  trap 'exit 130' INT TERM
  base_build "$rev"

  now_rev=$(git rev-parse --short HEAD)
  git diff --quiet HEAD -- 2>/dev/null || now_rev=$now_rev+dirty
  local run=()
  for name in "${names[@]}"; do
    if [ -x "$base_bin/$name" ]; then run+=("$name")
    else echo "bench/compare: $name does not exist at $base_short: left out" >&2; fi
  done
  [ ${#run[@]} -gt 0 ] || base_die "none of the benchmarks named exists at $base_short"

  failed=0
  results=$(mktemp)
  trap 'base_cleanup; rm -f "$results"' EXIT
  local order out line args
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(base troupe); else order=(troupe base); fi
    for name in "${run[@]}"; do
      args=()
      [ "$quick" = 1 ] && args=(${QUICK[$name]:-})
      for side in "${order[@]}"; do
        out=$(run_side "$side" "$r" "$name" "${args[@]}")
        printf '%s\n' "$out"
        printf '%s\n' "$out" >>"$results"
        while IFS= read -r line; do
          case "$line" in *check=ok*) ;; *) failed=1 ;; esac
        done <<<"$out"
      done
    done
  done

  awk -v base="$rev ($base_short)" -v now="$now_rev" -v rounds="$rounds" -v quick="$quick" \
    -f bench/compare-base.awk "$results"
  exit $failed
}
