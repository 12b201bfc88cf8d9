package haproxy

import (
	"math"

	"github.com/hoist-dev/hoist/balancer"
)

// maxWeight is the largest weight HAProxy takes for a server.
const maxWeight = 256

// shareWeights gives HAProxy the pool's canary split. HAProxy knows no
// sides, only server weights, so while a canary runs with share S each
// side's weights are scaled to S (canary) and 100-S (stable) of maxWeight,
// in proportion to the backends' scores: its weighted round-robin then
// sends the canary S% of new requests, to within a weight's rounding. A
// canary backend whose canary ended gets 0, like on hoist's balancer, as
// long as a stable backend is left. Without a canary, weights are scores.
func shareWeights(p *balancer.Pool, bs []balancer.Backend) []int {
	w := make([]int, len(bs))
	var sum [2]int // by side: 0 stable, 1 canary
	for i, b := range bs {
		w[i] = b.Weight
		sum[side(b)] += b.Weight
	}
	c := p.Traffic
	if c == nil || c.Canary == nil {
		if sum[0] > 0 { // an ended canary's backends take nothing new
			for i, b := range bs {
				if b.Canary {
					w[i] = 0
				}
			}
		}
		return w
	}
	if sum[0] == 0 || sum[1] == 0 {
		return w // one side only: it takes everything, as on the balancer
	}
	share := [2]float64{float64(100-c.Canary.Share) / 100, float64(c.Canary.Share) / 100}
	for i, b := range bs {
		s := side(b)
		w[i] = int(math.Round(float64(b.Weight) / float64(sum[s]) * share[s] * maxWeight))
	}
	return w
}

func side(b balancer.Backend) int {
	if b.Canary {
		return 1
	}
	return 0
}
