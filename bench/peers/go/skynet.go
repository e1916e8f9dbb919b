package main

import (
	"fmt"
	"os"
	"time"
)

// skynet [L]: a 10-ary tree of actors down to L leaves (L a power of 10).
// Leaf k (0..L-1) sends k to its parent; every node sums its 10 children and
// sends the sum up. The total must be L*(L-1)/2; n counts every actor.

func skynetNode(parent chan<- uint64, num, size uint64) {
	if size == 1 {
		parent <- num
		return
	}
	self := make(chan uint64, 10)
	size /= 10
	for i := uint64(0); i < 10; i++ {
		go skynetNode(self, num+i*size, size)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-self
	}
	parent <- sum
}

func skynet(args []uint64) result {
	leaves := args[0]
	var actors uint64
	for l := leaves; ; l /= 10 {
		actors += l
		if l == 1 {
			break
		}
		if l%10 != 0 {
			fmt.Fprintf(os.Stderr, "peer: skynet leaves must be a power of 10, not %d\n", leaves)
			os.Exit(2)
		}
	}
	done := make(chan uint64, 1)

	t0 := time.Now()
	go skynetNode(done, 0, leaves)
	total := <-done
	secs := time.Since(t0).Seconds()
	return result{n: actors, seconds: secs, ok: total == leaves*(leaves-1)/2, unit: "actors"}
}
