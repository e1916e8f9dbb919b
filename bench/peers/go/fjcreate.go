package main

import "time"

// fjcreate [N]: the driver creates N actors and sends each one message; each
// replies to the driver and exits. The driver counts N replies. Created
// actors run while the driver is still creating.

func fjcreate(args []uint64) result {
	n := args[0]
	// The driver's mailbox: large enough that no actor waits to reply, so
	// each one exits right after replying (like an unbounded mailbox).
	replies := make(chan uint64, n)

	t0 := time.Now()
	for i := uint64(0); i < n; i++ {
		self := make(chan uint64, 1)
		go func(self <-chan uint64) {
			v := <-self
			replies <- v
		}(self)
		self <- i
	}
	var count, sum uint64
	for count < n {
		sum += <-replies
		count++
	}
	secs := time.Since(t0).Seconds()
	return result{n: n, seconds: secs, ok: sum == n*(n-1)/2, unit: "actors"}
}
