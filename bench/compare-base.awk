# bench/compare-base.awk — the table of `bench/compare --base REV`.
# Input: result lines with impl=base or impl=troupe (troupe now) and round=;
# -v base="REV (commit)" now="commit[+dirty]" rounds=R quick=0|1.
#
# One row per figure: every result line's rate (each variant of a benchmark
# on its own row, e.g. channel_1to1) and latency's mid_us. Per row: the
# median of each build over the rounds, and the ratio now/base taken within
# each round, as min / median / max over the rounds. A rate is better
# higher, except bytes_per_actor (idle) and bytes_per_conn (echo_idle);
# mid_us is better lower. A median
# ratio within [0.95, 1.05] is "within noise"; the verdict names the rows
# outside it.
function median(arr, m,    x, y, t) {
  if (m == 0) return 0
  for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
    if (arr[y] < arr[x]) { t = arr[x]; arr[x] = arr[y]; arr[y] = t }
  return (m % 2) ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
}
function human(x) {
  if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
  if (x >= 1e4) return sprintf("%.1fk", x / 1e3)
  if (x >= 100) return sprintf("%.0f", x)
  return sprintf("%.3f", x)
}
# row(key, label, figure, better): a row, in order of first appearance
function row(key, label, fig, better) {
  if (!(key in known)) { known[key] = 1; keys[++nk] = key }
  lab[key] = label; figure[key] = fig; dir[key] = better
}
function add(key, side, r, v) {
  c = ++cnt[key, side]; val[key, side, c] = v; byround[key, side, r] = v
  if (r > maxr) maxr = r
}
{
  delete f
  for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) }
  if (!("bench" in f)) next
  b = f["bench"]; side = f["impl"]; r = f["round"] + 0
  if (side != "base" && side != "troupe") next
  if (f["check"] != "ok") {
    if (!((b) in known)) row(b, b, "-", "")
    bad[b, side]++
    next
  }
  if ("measures" in f) { note = 1; lb = b "*" } else lb = b
  if ("rate" in f) {
    u = f["unit"]
    if (u ~ /^bytes_per_/) row(b, lb, u, "lower")
    else row(b, lb, u "/s", "higher")
    add(b, side, r, f["rate"] + 0)
  }
  if ("mid_us" in f) {
    row(b SUBSEP "mid_us", lb, "mid_us", "lower"); twofig[b] = 1
    add(b SUBSEP "mid_us", side, r, f["mid_us"] + 0)
  }
}
END {
  printf "\ntroupe now (%s) against troupe at %s, THREADS=%s, %d round%s, the order of the two alternating\n",
    now, base, ENVIRON["THREADS"], rounds, rounds == 1 ? "" : "s"
  if (quick) printf "(--quick: small sizes, runs too short to judge a change; they exercise the comparison)\n"
  printf "base, now: medians over the rounds; now/base: the ratio within each round, min / median / max\n"
  printf "%-14s %-16s %-6s %10s %10s   %-25s  %s\n", "bench", "figure", "better", "base", "now", "now/base", "verdict"
  printf "%-14s %-16s %-6s %10s %10s   %s\n", "", "", "", "", "", "min / median / max"
  out = ""; nout = 0; nin = 0; none = ""
  for (j = 1; j <= nk; j++) {
    key = keys[j]
    split(key, kp, SUBSEP) # kp[1]: the benchmark's name
    printf "%-14s %-16s %-6s", lab[key], figure[key], dir[key]
    for (s = 1; s <= 2; s++) {
      side = s == 1 ? "base" : "troupe"
      m = cnt[key, side]; delete a
      for (x = 1; x <= m; x++) a[x] = val[key, side, x]
      str = m ? human(median(a, m)) : "-"
      if (bad[kp[1], side]) str = str "!"
      printf " %10s", str
    }
    nr = 0; delete q
    for (r = 1; r <= maxr; r++)
      if (((key, "base", r) in byround) && ((key, "troupe", r) in byround) && byround[key, "base", r] > 0)
        q[++nr] = byround[key, "troupe", r] / byround[key, "base", r]
    name = twofig[kp[1]] ? lab[key] " " figure[key] : lab[key]
    if (!nr) {
      printf "   %-25s  %s\n", "-", "no ratio"
      none = none (none == "" ? "" : ", ") name
      continue
    }
    lo = hi = q[1]
    for (x = 2; x <= nr; x++) { if (q[x] < lo) lo = q[x]; if (q[x] > hi) hi = q[x] }
    med = median(q, nr)
    if (med >= 0.95 && med <= 1.05) { v = "noise"; nin++ }
    else {
      v = ((med > 1) == (dir[key] == "higher")) ? "better" : "worse"
      out = out (nout++ ? ", " : "") sprintf("%s %.3f (%s)", name, med, v)
    }
    printf "   %-25s  %s\n", sprintf("%.3f / %.3f / %.3f", lo, med, hi), v
  }
  if (note) printf "(* not troupe's code: a floor measured in the same program; its ratio shows the machine's noise)\n"
  printf "(! = a run of that build failed its check or timed out; better = which direction of the figure is good)\n"
  if (nout == 0 && none == "")
    printf "verdict: within noise: all %d figures have a median per-round ratio now/base within ±5%%\n", nin
  else {
    printf "verdict:"
    if (nout) printf " outside ±5%%: %s;", out
    if (none != "") printf " no ratio (failed runs): %s;", none
    printf " %d figure%s within noise (median per-round ratio within ±5%%)\n", nin, nin == 1 ? "" : "s"
  }
}
