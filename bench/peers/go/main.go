// Command peer is the Go peer of troupe's benchmark suite
// (docs/benchmarks.md): one goroutine per actor, a channel as its mailbox.
//
//	peer <name> [sizes...]
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// result is what a benchmark's driver hands back.
type result struct {
	n       uint64  // what the rate counts
	seconds float64 // wall time of the measured part
	ok      bool    // the benchmark's own verification
	unit    string  // roundtrips, hops, msgs, ...
}

type benchmark struct {
	run      func(args []uint64) result
	defaults []uint64
}

var benchmarks = map[string]benchmark{
	"pingpong":     {pingpong, []uint64{1000000}},
	"threadring":   {threadring, []uint64{10000000}},
	"counting":     {counting, []uint64{10000000}},
	"fjthroughput": {fjthroughput, []uint64{60, 400000}},
	"fjcreate":     {fjcreate, []uint64{1000000}},
	"mailbox":      {mailbox, []uint64{20, 500000}},
	"big":          {big, []uint64{500, 20000}},
	"chameneos":    {chameneos, []uint64{100, 200000}},
	"skynet":       {skynet, []uint64{1000000}},
}

func usage() {
	names := make([]string, 0, len(benchmarks))
	for name := range benchmarks {
		names = append(names, name)
	}
	fmt.Fprintf(os.Stderr, "usage: peer <%s> [sizes...]\n", strings.Join(sortStrings(names), "|"))
	os.Exit(2)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// peakRSSKB reads VmHWM from /proc/self/status (-1 if unavailable).
func peakRSSKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmHWM:") {
			fields := strings.Fields(line[len("VmHWM:"):])
			if len(fields) > 0 {
				if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return kb
				}
			}
		}
	}
	return -1
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	name := os.Args[1]
	b, found := benchmarks[name]
	if !found {
		fmt.Fprintf(os.Stderr, "peer: no benchmark '%s'\n", name)
		usage()
	}
	args := append([]uint64(nil), b.defaults...)
	for i, s := range os.Args[2:] {
		if i >= len(args) {
			fmt.Fprintf(os.Stderr, "peer: %s takes at most %d sizes\n", name, len(args))
			os.Exit(2)
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 {
			fmt.Fprintf(os.Stderr, "peer: bad size '%s'\n", s)
			os.Exit(2)
		}
		args[i] = v
	}
	if t := os.Getenv("THREADS"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil || v < 1 {
			fmt.Fprintf(os.Stderr, "peer: bad THREADS '%s'\n", t)
			os.Exit(2)
		}
		runtime.GOMAXPROCS(v)
	}
	threads := runtime.GOMAXPROCS(0)

	r := b.run(args)

	rate := uint64(0)
	if r.seconds > 0 {
		rate = uint64(float64(r.n) / r.seconds)
	}
	check := "ok"
	if !r.ok {
		check = "FAIL"
	}
	fmt.Printf("bench=%s impl=go threads=%d n=%d seconds=%.6f rate=%d unit=%s peak_rss_kb=%d check=%s placement=go_scheduler\n",
		name, threads, r.n, r.seconds, rate, r.unit, peakRSSKB(), check)
	if !r.ok {
		os.Exit(1)
	}
}
