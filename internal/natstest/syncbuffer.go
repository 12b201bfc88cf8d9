package natstest

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a writer (a server's or a daemon's log,
// a process's output) and a test polling what it wrote may use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
