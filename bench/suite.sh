# bench/suite.sh — sourced by bench/run and bench/compare: the benchmark
# names, the reduced sizes CI runs them at, and the Release build.

# The nine of docs/benchmarks.md (which the peers implement too), the
# three of issue #5, then the worker pool's, the channels' and the
# sockets' own (echo: troupe's echo server against a plain libuv one).
PEER_BENCHES=(pingpong threadring counting fjthroughput fjcreate mailbox big chameneos skynet)
ALL=("${PEER_BENCHES[@]}" idle latency spawn offload channel echo)
declare -A QUICK=([pingpong]="20000" [threadring]="200000" [counting]="200000"
  [fjthroughput]="10 20000" [fjcreate]="20000" [mailbox]="4 20000" [big]="50 1000"
  [chameneos]="20 20000" [skynet]="10000" [idle]="20000 1" [latency]="20000 2000"
  [spawn]="20000" [offload]="20000 200" [channel]="200000"
  [echo]="3 2000 100 50 500")

# Builds troupe's benchmarks in Release into build-release/.
build_release() {
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTROUPE_BUILD_TESTS=OFF \
    -DTROUPE_BUILD_BENCH=ON -DTROUPE_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build-release -j"${JOBS:-2}" >/dev/null
}
