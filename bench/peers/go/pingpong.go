package main

import "time"

// pingpong [N]: two actors exchange N round trips. Each message carries the
// sender's mailbox; pong answers to whoever sent the ping.

type ball struct{ from chan ball }

func pingpong(args []uint64) result {
	n := args[0]
	pingBox := make(chan ball, 1)
	pongBox := make(chan ball, 1)
	start := make(chan struct{})
	done := make(chan uint64)

	go func() { // pong
		for m := range pongBox {
			m.from <- ball{from: pongBox}
		}
	}()
	go func() { // ping
		<-start
		var trips uint64
		for trips < n {
			pongBox <- ball{from: pingBox}
			<-pingBox
			trips++
		}
		done <- trips
	}()

	t0 := time.Now()
	close(start)
	trips := <-done
	secs := time.Since(t0).Seconds()
	close(pongBox)
	return result{n: n, seconds: secs, ok: trips == n, unit: "roundtrips"}
}
