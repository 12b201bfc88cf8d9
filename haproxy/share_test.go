package haproxy

import (
	"slices"
	"testing"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
)

func TestShareWeights(t *testing.T) {
	stable := func(w int) balancer.Backend { return balancer.Backend{Weight: w} }
	canary := func(w int) balancer.Backend { return balancer.Backend{Weight: w, Canary: true} }
	running := func(share int) *balancer.Pool {
		return &balancer.Pool{Traffic: &events.Traffic{Canary: &events.CanaryTraffic{ID: 2, Share: share}}}
	}
	tests := []struct {
		name string
		pool *balancer.Pool
		bs   []balancer.Backend
		want []int
	}{
		{"no canary: scores", &balancer.Pool{}, []balancer.Backend{stable(100), stable(40)}, []int{100, 40}},
		{"10% over three stable, one canary", running(10), []balancer.Backend{stable(100), stable(100), stable(100), canary(100)}, []int{77, 77, 77, 26}},
		{"50%, scores within a side", running(50), []balancer.Backend{stable(100), stable(60), canary(100)}, []int{80, 48, 128}},
		{"canary only", running(10), []balancer.Backend{canary(100)}, []int{100}},
		{"no canary backend yet", running(10), []balancer.Backend{stable(100)}, []int{100}},
		{"ended canary gets nothing new", &balancer.Pool{}, []balancer.Backend{stable(100), canary(100)}, []int{100, 0}},
		{"ended canary alone still serves", &balancer.Pool{}, []balancer.Backend{canary(100)}, []int{100}},
		{"0% share", running(0), []balancer.Backend{stable(100), canary(100)}, []int{256, 0}},
	}
	for _, tt := range tests {
		if got := shareWeights(tt.pool, tt.bs); !slices.Equal(got, tt.want) {
			t.Errorf("%s: weights %v, want %v", tt.name, got, tt.want)
		}
	}
	// The canary's share of the total weight is its share, to within a
	// weight's rounding.
	w := shareWeights(running(10), []balancer.Backend{stable(100), stable(100), stable(100), canary(100)})
	if got := float64(w[3]) / float64(w[0]+w[1]+w[2]+w[3]); got < 0.095 || got > 0.105 {
		t.Errorf("canary gets %.3f of the weight, want 0.10", got)
	}
}
