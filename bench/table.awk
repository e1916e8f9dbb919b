# bench/table.awk — the summary table of bench/run (and bench/compare's
# input format): reads result lines (key=value fields) and prints, per
# benchmark in order of first appearance, the number of runs and the
# min / median / max of `rate`, then the medians of the extra figures that
# have targets in docs/performance.md.
function median(arr, m,    x, y, t) {
  for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
    if (arr[y] < arr[x]) { t = arr[x]; arr[x] = arr[y]; arr[y] = t }
  return (m % 2) ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
}
BEGIN { nextra = split("idle_cpu_pct p50_us p99_us p999_us eventfd_us spin_us queue_us p50_over_spin p50_over_queue p99_over_eventfd", extra, " ") }
{
  name = ""; delete f
  for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) }
  if (!("bench" in f) || !("rate" in f)) next
  name = f["bench"]
  if (!(name in n)) { names[++k] = name; n[name] = 0 }
  c = ++n[name]; v[name, c] = f["rate"] + 0; u[name] = f["unit"]
  for (e = 1; e <= nextra; e++) if (extra[e] in f) { xs[name, extra[e], c] = f[extra[e]] + 0; has[name, extra[e]] = 1 }
}
END {
  printf "\n%-20s %5s %14s %14s %14s  %s\n", "bench", "runs", "min", "median", "max", "unit"
  for (j = 1; j <= k; j++) {
    b = names[j]; m = n[b]
    for (x = 1; x <= m; x++) a[x] = v[b, x]
    med = median(a, m)
    unit = (u[b] ~ /^bytes_per_/) ? u[b] : u[b] "/s"
    printf "%-20s %5d %14.0f %14.0f %14.0f  %s\n", b, m, a[1], med, a[m], unit
    line = ""
    for (e = 1; e <= nextra; e++) if (has[b, extra[e]]) {
      for (x = 1; x <= m; x++) a[x] = xs[b, extra[e], x]
      line = line sprintf(" %s=%.2f", extra[e], median(a, m))
    }
    if (line != "") printf "%-20s %5s   medians:%s\n", "", "", line
  }
}
