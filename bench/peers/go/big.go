package main

import "time"

// big [W P]: W workers; each sends a ping to a random peer (never itself),
// waits for the pong, then sends its next ping, until it has had P pongs;
// meanwhile it answers every ping it receives with a pong at once. A worker
// with P pongs tells the driver and keeps answering pings. n = 2*W*P.

type bigMsg struct {
	from int32 // the pinging worker
	pong bool
}

func big(args []uint64) result {
	w, p := int(args[0]), args[1]
	if w < 2 {
		return result{n: 2 * uint64(w) * p, unit: "msgs"}
	}
	// A worker holds at most W-1 pings from its peers and one pong, so a
	// mailbox of W never blocks a sender.
	boxes := make([]chan bigMsg, w)
	for i := range boxes {
		boxes[i] = make(chan bigMsg, w)
	}
	done := make(chan uint64, w)
	start := make(chan struct{})

	for i := 0; i < w; i++ {
		go func(id int) {
			self := boxes[id]
			rng := uint64(id+1) * 0x9E3779B97F4A7C15
			ping := func() {
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				peer := int(rng % uint64(w-1))
				if peer >= id {
					peer++
				}
				boxes[peer] <- bigMsg{from: int32(id)}
			}
			<-start
			ping()
			var pongs uint64
			for m := range self {
				if !m.pong {
					boxes[m.from] <- bigMsg{from: int32(id), pong: true}
					continue
				}
				pongs++
				if pongs < p {
					ping()
				} else {
					done <- pongs
				}
			}
		}(i)
	}

	t0 := time.Now()
	close(start)
	var pongs uint64
	for i := 0; i < w; i++ {
		pongs += <-done
	}
	secs := time.Since(t0).Seconds()
	n := 2 * uint64(w) * p
	return result{n: n, seconds: secs, ok: pongs == uint64(w)*p, unit: "msgs"}
}
