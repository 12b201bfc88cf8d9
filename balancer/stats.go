package balancer

import (
	"sync/atomic"
	"time"
)

// codeCounts counts responses by status code without locks, maps or
// allocation: up to 16 distinct codes claim a slot each (by CAS), and any
// further code is counted as "other".
type codeCounts struct {
	codes [16]atomic.Int32
	n     [16]atomic.Uint64
	other atomic.Uint64
}

func (c *codeCounts) inc(code int) {
	want := int32(code)
	for i := range c.codes {
		v := c.codes[i].Load()
		if v == 0 {
			if c.codes[i].CompareAndSwap(0, want) {
				v = want
			} else {
				v = c.codes[i].Load()
			}
		}
		if v == want {
			c.n[i].Add(1)
			return
		}
	}
	c.other.Add(1)
}

// each calls fn for every code with a non-zero count; code 0 is "other".
func (c *codeCounts) each(fn func(code int, n uint64)) {
	for i := range c.codes {
		if code := c.codes[i].Load(); code != 0 {
			if v := c.n[i].Load(); v != 0 {
				fn(int(code), v)
			}
		}
	}
	if v := c.other.Load(); v != 0 {
		fn(0, v)
	}
}

// latencyBuckets are the histogram's upper bounds in seconds.
var latencyBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// histogram is a Prometheus-style latency histogram with atomic counters.
type histogram struct {
	buckets [len(latencyBuckets)]atomic.Uint64 // non-cumulative
	count   atomic.Uint64
	sumNano atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	for i, ub := range latencyBuckets {
		if s <= ub {
			h.buckets[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNano.Add(uint64(max(d, 0)))
}
