package change

import (
	"reflect"
	"testing"

	"github.com/hoist-dev/hoist/events"
)

// TestSpecChangeApplyKeepsWhatToRun: what a deploy leaves out keeps its
// value, the image and its command override too.
func TestSpecChangeApplyKeepsWhatToRun(t *testing.T) {
	img := func(image string, cmd ...string) events.Spec {
		return events.Spec{Image: image, Command: cmd, Replicas: 3, Port: 8080, Env: map[string]string{"A": "1"}}
	}
	tests := []struct {
		name   string
		from   events.Spec
		change SpecChange
		want   events.Spec
	}{
		{"command keeps the image", img("web:1"), SpecChange{Command: []string{"web", "--debug"}}, img("web:1", "web", "--debug")},
		{"image keeps the override", img("web:1", "web", "--debug"), SpecChange{Image: "web:2"}, img("web:2", "web", "--debug")},
		{"both replace both", img("web:1", "a"), SpecChange{Image: "web:2", Command: []string{"b"}}, img("web:2", "b")},
		{"a process scope gets an image", img("", "./api"), SpecChange{Image: "api:1"}, img("api:1")},
		{"a process scope gets a command", img("", "./api"), SpecChange{Command: []string{"./api", "-v"}}, img("", "./api", "-v")},
		{"a first deploy", events.Spec{}, SpecChange{Image: "web:1"}, events.Spec{Image: "web:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := *tt.from.Clone()
			tt.change.Apply(&got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
