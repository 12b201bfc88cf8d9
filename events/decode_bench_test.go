package events

import (
	"testing"
	"time"
)

func BenchmarkDecode(b *testing.B) {
	e := &Event{ID: "0123456789abcdefghijkl", Scope: MustParseScope("acme.prod.web"), Revision: 12345, Time: time.Now(), Actor: "bench@host", Data: &Scaled{Replicas: 3}}
	data, err := Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
