package main

import "time"

// fjthroughput [K M]: the driver sends M messages to each of K actors,
// round-robin (message i to actor i mod K); each actor counts its messages
// and tells the driver when it has M.

func fjthroughput(args []uint64) result {
	k, m := args[0], args[1]
	boxes := make([]chan uint64, k)
	done := make(chan uint64, k)
	for i := range boxes {
		boxes[i] = make(chan uint64, 1024)
		go func(self <-chan uint64) {
			var count uint64
			for v := range self {
				count += v
				if count == m {
					done <- count
					return
				}
			}
		}(boxes[i])
	}

	total := k * m
	t0 := time.Now()
	for i := uint64(0); i < total; i++ {
		boxes[i%k] <- 1
	}
	var got uint64
	for i := uint64(0); i < k; i++ {
		got += <-done
	}
	secs := time.Since(t0).Seconds()
	return result{n: total, seconds: secs, ok: got == total, unit: "msgs"}
}
