package balancer

import (
	"container/list"
	"io"
	"net/http"
	"sync"
	"time"
)

// cache is one scope's static response cache: bounded by bytes (least
// recently used entries go first), each entry with a deadline. Expired
// entries are dropped on lookup and by the balancer's sweeper.
type cache struct {
	ttl      time.Duration
	maxBytes int64
	maxEntry int64

	mu      sync.Mutex
	entries map[string]*list.Element // of *cacheEntry
	lru     list.List                // front: most recently used
	size    int64
}

type cacheEntry struct {
	key     string
	header  http.Header
	body    []byte
	stored  time.Time
	expires time.Time
}

func (e *cacheEntry) size() int64 { return int64(len(e.key) + len(e.body) + 256) }

// maxCacheEntry bounds one entry, so one large file cannot evict the rest.
const maxCacheEntry = 16 << 20

func newCache(ttl time.Duration, maxBytes int64) *cache {
	return &cache{
		ttl:      ttl,
		maxBytes: maxBytes,
		maxEntry: min(max(maxBytes/4, 1), maxCacheEntry),
		entries:  make(map[string]*list.Element),
	}
}

// get returns a fresh entry for key, or nil.
func (c *cache) get(key string, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.entries[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.remove(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

// put stores e, evicting the least recently used entries to make room.
func (c *cache) put(e *cacheEntry) {
	sz := e.size()
	if sz > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.key]; old != nil {
		c.remove(old)
	}
	for c.size+sz > c.maxBytes {
		c.remove(c.lru.Back())
	}
	c.entries[e.key] = c.lru.PushFront(e)
	c.size += sz
}

func (c *cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.size -= e.size()
}

// sweep drops expired entries and returns how many it dropped.
func (c *cache) sweep(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.lru.Back(); el != nil; {
		prev := el.Prev()
		if !now.Before(el.Value.(*cacheEntry).expires) {
			c.remove(el)
			n++
		}
		el = prev
	}
	return n
}

// stats returns the entry count and bytes held.
func (c *cache) stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.size
}

// fillBody passes a response body through to the client and keeps a copy;
// when the body ends cleanly and fits, the copy goes into the cache.
type fillBody struct {
	rc    io.ReadCloser
	c     *cache
	entry *cacheEntry
	want  int64 // Content-Length, or -1
	buf   []byte
	over  bool
}

func (f *fillBody) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if n > 0 && !f.over {
		if int64(len(f.buf)+n) > f.c.maxEntry {
			f.over, f.buf = true, nil
		} else {
			f.buf = append(f.buf, p[:n]...)
		}
	}
	if err == io.EOF && !f.over && (f.want < 0 || int64(len(f.buf)) == f.want) {
		f.entry.body = f.buf
		f.c.put(f.entry)
		f.over = true // store once
	}
	return n, err
}

func (f *fillBody) Close() error { return f.rc.Close() }
