package main

import "time"

// mailbox [S M]: S sender actors each send M messages to one receiver
// (N:1 contention); the receiver counts S*M and reports to the driver.

func mailbox(args []uint64) result {
	s, m := args[0], args[1]
	total := s * m
	receiver := make(chan uint64, 1024)
	done := make(chan uint64)
	start := make(chan struct{})

	go func() {
		var count, sum uint64
		for v := range receiver {
			sum += v
			count++
			if count == total {
				done <- sum
				return
			}
		}
	}()
	for i := uint64(0); i < s; i++ {
		go func() {
			<-start
			for j := uint64(0); j < m; j++ {
				receiver <- 1
			}
		}()
	}

	t0 := time.Now()
	close(start)
	sum := <-done
	secs := time.Since(t0).Seconds()
	return result{n: total, seconds: secs, ok: sum == total, unit: "msgs"}
}
