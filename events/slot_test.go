package events

import "testing"

func TestParseSlot(t *testing.T) {
	for _, c := range []struct {
		in     string
		node   string
		index  int
		canary bool
		ok     bool
	}{
		{"node-1#0", "node-1", 0, false, true},
		{"node-1#c2", "node-1", 2, true, true},
		{"node-1#c", "", 0, false, false},
		{"node-1#cc1", "", 0, false, false},
		{"node-1#c01", "", 0, false, false},
		{"node-1#-1", "", 0, false, false},
		{"127.0.0.1:80", "", 0, false, false},
	} {
		node, i, canary, ok := ParseSlot(c.in)
		if node != c.node || i != c.index || canary != c.canary || ok != c.ok {
			t.Errorf("ParseSlot(%q) = %q, %d, %v, %v", c.in, node, i, canary, ok)
		}
		if ok && (canary && CanarySlot(node, i) != c.in || !canary && Slot(node, i) != c.in) {
			t.Errorf("%q does not write back as itself", c.in)
		}
	}
	if err := validateScoreTarget("node-1#c0"); err != nil {
		t.Errorf("a canary slot is refused: %v", err)
	}
}
