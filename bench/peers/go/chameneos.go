package main

import "time"

// chameneos [C M]: C chameneos (colour i mod 3) meet through a mall actor.
// Each sends the mall a meet request (its colour and its mailbox); the mall
// pairs two requests into a meeting and tells each the other's colour; each
// takes the complement colour and asks again. After M meetings the mall
// answers every request with stop, and each chameneo reports its meeting
// count to the driver; the counts must sum to 2*M.

type colour uint8

const (
	blue colour = iota
	red
	yellow
)

func complement(a, b colour) colour {
	if a == b {
		return a
	}
	return 3 - a - b
}

type meetReq struct {
	c     colour
	reply chan<- meetReply
}

type meetReply struct {
	other colour
	stop  bool
}

func chameneos(args []uint64) result {
	c, m := int(args[0]), args[1]
	if c < 2 {
		return result{n: m, unit: "meetings"}
	}
	mall := make(chan meetReq, c) // at most one request per chameneo
	reports := make(chan uint64, c)
	mallDone := make(chan uint64, 1)
	start := make(chan struct{})

	go func() { // the mall
		var meetings uint64
		var waiting meetReq
		hasWaiting := false
		stopped := 0
		for req := range mall {
			if meetings >= m {
				req.reply <- meetReply{stop: true}
				if stopped++; stopped == c {
					mallDone <- meetings
					return
				}
				continue
			}
			if !hasWaiting {
				waiting, hasWaiting = req, true
				continue
			}
			meetings++
			waiting.reply <- meetReply{other: req.c}
			req.reply <- meetReply{other: waiting.c}
			hasWaiting = false
		}
	}()
	for i := 0; i < c; i++ {
		go func(col colour) {
			self := make(chan meetReply, 1)
			var met uint64
			<-start
			for {
				mall <- meetReq{c: col, reply: self}
				r := <-self
				if r.stop {
					reports <- met
					return
				}
				met++
				col = complement(col, r.other)
			}
		}(colour(i % 3))
	}

	t0 := time.Now()
	close(start)
	var sum uint64
	for i := 0; i < c; i++ {
		sum += <-reports
	}
	secs := time.Since(t0).Seconds()
	meetings := <-mallDone
	return result{n: m, seconds: secs, ok: sum == 2*m && meetings == m, unit: "meetings"}
}
