package main

import "time"

// threadring [T]: 503 actors in a ring pass a token T hops. The token counts
// down; the actor that receives it at 0 reports its index to the driver.

const ringSize = 503

func threadring(args []uint64) result {
	hops := args[0]
	ring := make([]chan uint64, ringSize)
	for i := range ring {
		ring[i] = make(chan uint64, 1)
	}
	done := make(chan int)
	for i := 0; i < ringSize; i++ {
		go func(id int, self <-chan uint64, next chan<- uint64) {
			for t := range self {
				if t == 0 {
					done <- id
					return
				}
				next <- t - 1
			}
		}(i, ring[i], ring[(i+1)%ringSize])
	}

	t0 := time.Now()
	ring[0] <- hops
	last := <-done
	secs := time.Since(t0).Seconds()
	return result{n: hops, seconds: secs, ok: uint64(last) == hops%ringSize, unit: "hops"}
}
