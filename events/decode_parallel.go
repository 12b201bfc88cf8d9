package events

import (
	"context"
	"runtime"
)

type rawMsg struct {
	seq     uint64
	subject string
	data    []byte
}

type decoded struct {
	ev  *Event
	bad *Unreadable
}

// orderedDecoder decodes messages on several goroutines and hands the
// results to fn and skipped in the order the messages arrived. Its
// goroutines are owned by it and gone when close returns.
type orderedDecoder struct {
	ctx     context.Context
	upTo    uint64
	fn      func(*Event)
	skipped func(Unreadable)

	batch   []rawMsg
	work    chan job
	results chan chan []decoded // in submission order
	done    chan struct{}
	stopped bool // upTo reached: ignore the rest
	stop    chan struct{}
}

type job struct {
	msgs []rawMsg
	out  chan []decoded
}

const decodeBatch = 256

func newOrderedDecoder(ctx context.Context, upTo uint64, fn func(*Event), skipped func(Unreadable)) *orderedDecoder {
	workers := max(1, runtime.GOMAXPROCS(0))
	d := &orderedDecoder{
		ctx: ctx, upTo: upTo, fn: fn, skipped: skipped,
		work:    make(chan job, workers),
		results: make(chan chan []decoded, 4*workers),
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
	}
	for range workers {
		go d.worker()
	}
	go d.apply()
	return d
}

func (d *orderedDecoder) worker() {
	for j := range d.work {
		out := make([]decoded, len(j.msgs))
		for i, m := range j.msgs {
			e, err := Decode(m.data)
			if err != nil {
				out[i].bad = &Unreadable{Sequence: m.seq, Subject: m.subject, Err: err}
				continue
			}
			out[i].ev = e
		}
		j.out <- out
	}
}

// apply runs the callbacks in order, on one goroutine.
func (d *orderedDecoder) apply() {
	defer close(d.done)
	for res := range d.results {
		for _, r := range <-res {
			if d.stopped {
				continue
			}
			if r.bad != nil {
				d.skipped(*r.bad)
				continue
			}
			if d.upTo != 0 && r.ev.Revision > d.upTo {
				d.stopped = true
				close(d.stop)
				continue
			}
			d.fn(r.ev)
			if d.upTo != 0 && r.ev.Revision == d.upTo {
				d.stopped = true
				close(d.stop)
			}
		}
	}
}

// add queues one message. It returns false once no more are wanted.
func (d *orderedDecoder) add(m rawMsg) bool {
	d.batch = append(d.batch, m)
	if len(d.batch) >= decodeBatch {
		d.flush()
	}
	select {
	case <-d.stop:
		return false
	default:
		return true
	}
}

func (d *orderedDecoder) flush() {
	if len(d.batch) == 0 {
		return
	}
	out := make(chan []decoded, 1)
	d.results <- out
	d.work <- job{msgs: d.batch, out: out}
	d.batch = nil
}

// close decodes what is queued, waits for every callback and stops the
// goroutines.
func (d *orderedDecoder) close() error {
	d.flush()
	close(d.work)
	close(d.results)
	<-d.done
	return d.ctx.Err()
}
