package main

import "time"

// counting [N]: a producer sends N increments (each a message carrying 1) to
// a counter actor, then asks it for the total (request/reply).

type countMsg struct {
	inc   uint64
	reply chan<- uint64 // non-nil: a request for the total
}

func counting(args []uint64) result {
	n := args[0]
	counter := make(chan countMsg, 1024)
	go func() {
		var total uint64
		for m := range counter {
			if m.reply != nil {
				m.reply <- total
				continue
			}
			total += m.inc
		}
	}()

	t0 := time.Now()
	for i := uint64(0); i < n; i++ {
		counter <- countMsg{inc: 1}
	}
	reply := make(chan uint64, 1)
	counter <- countMsg{reply: reply}
	total := <-reply
	secs := time.Since(t0).Seconds()
	close(counter)
	return result{n: n, seconds: secs, ok: total == n, unit: "msgs"}
}
