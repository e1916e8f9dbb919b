# bench/compare.awk — the table of bench/compare. Input: result lines with
# a round=<r> field appended; -v impls="troupe go erlang".
function median(arr, m,    x, y, t) {
  if (m == 0) return 0
  for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
    if (arr[y] < arr[x]) { t = arr[x]; arr[x] = arr[y]; arr[y] = t }
  return (m % 2) ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
}
function human(x) {
  if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
  if (x >= 1e3) return sprintf("%.1fk", x / 1e3)
  return sprintf("%.0f", x)
}
BEGIN { ni = split(impls, imp, " ") }
{
  delete f
  for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) }
  if (!("bench" in f) || f["check"] != "ok") { if ("bench" in f) bad[f["bench"], f["impl"]]++; next }
  b = f["bench"]; im = f["impl"]; r = f["round"]
  if (!(b in seen)) { seen[b] = 1; names[++k] = b; unit[b] = f["unit"] }
  c = ++cnt[b, im]
  rate[b, im, c] = f["rate"] + 0; rss[b, im, c] = f["peak_rss_kb"] + 0
  byround[b, im, r] = f["rate"] + 0; rounds[b, r] = 1
  if (r > maxr) maxr = r
}
END {
  printf "\nmedian rates (per second) and troupe's ratio to the best peer, THREADS=%s\n", ENVIRON["THREADS"]
  printf "%-13s %-11s", "bench", "unit"
  for (i = 1; i <= ni; i++) printf " %10s", imp[i]
  printf "   %-20s", "troupe/best peer"
  for (i = 1; i <= ni; i++) printf " %11s", "rss_" imp[i]
  printf "\n"
  printf "%-13s %-11s", "", ""
  for (i = 1; i <= ni; i++) printf " %10s", ""
  printf "   %-20s", "min / median / max"
  for (i = 1; i <= ni; i++) printf " %11s", "MB"
  printf "\n"
  for (j = 1; j <= k; j++) {
    b = names[j]
    printf "%-13s %-11s", b, unit[b]
    for (i = 1; i <= ni; i++) {
      m = cnt[b, imp[i]]; delete a
      for (x = 1; x <= m; x++) a[x] = rate[b, imp[i], x]
      s = m ? human(median(a, m)) : "-"
      if (bad[b, imp[i]]) s = s "!"
      printf " %10s", s
    }
    # per round: troupe / the best peer of that round
    nr = 0; delete q
    for (r = 1; r <= maxr; r++) {
      if (!((b, "troupe", r) in byround)) continue
      best = 0
      for (i = 2; i <= ni; i++) if (((b, imp[i], r) in byround) && byround[b, imp[i], r] > best) best = byround[b, imp[i], r]
      if (best > 0) q[++nr] = byround[b, "troupe", r] / best
    }
    if (nr) { lo = hi = q[1]; for (x = 2; x <= nr; x++) { if (q[x] < lo) lo = q[x]; if (q[x] > hi) hi = q[x] }
              printf "   %-20s", sprintf("%.2f / %.2f / %.2f", lo, median(q, nr), hi) }
    else printf "   %-20s", "-"
    for (i = 1; i <= ni; i++) {
      m = cnt[b, imp[i]]; delete a
      for (x = 1; x <= m; x++) a[x] = rss[b, imp[i], x]
      printf " %11s", m ? sprintf("%.1f", median(a, m) / 1024) : "-"
    }
    printf "\n"
  }
  printf "(! = a run of that implementation failed its check or timed out)\n"
}
