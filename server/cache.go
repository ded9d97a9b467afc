package server

import (
	"container/list"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/goose-rwkv/goose/core"
)

// prefixCache maps token sequences to the model states after them, bounded
// in bytes with least-recently-used eviction. A lookup finds the longest
// cached sequence that is a prefix of a prompt, so a request that extends
// an earlier conversation only feeds the new tokens. Keys are hashes of the
// sequences; a hit is confirmed by comparing the tokens themselves.
//
// States stay on the model's backend. A prefixCache is safe for concurrent
// use; states are copied in and out under its lock, so an eviction never
// frees a state that is being read.
type prefixCache struct {
	mu       sync.Mutex
	capacity int64 // bytes; <= 0 disables the cache
	used     int64
	lru      list.List                  // of *cacheEntry, most recent first
	byHash   map[uint64][]*list.Element // hash of ids → entries
	lengths  map[int]int                // len(ids) → number of entries
	seed     maphash.Seed

	lookups, hits, hitTokens, inserts, evictions uint64
}

type cacheEntry struct {
	ids  []int32
	hash uint64
	st   *core.State
}

func newPrefixCache(capacity int64) *prefixCache {
	return &prefixCache{
		capacity: capacity,
		byHash:   map[uint64][]*list.Element{},
		lengths:  map[int]int{},
		seed:     maphash.MakeSeed(),
	}
}

// prefixHashes returns h where h[n-1] is the hash of ids[:n], for n up to
// len(ids).
func (c *prefixCache) prefixHashes(ids []int32) []uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	out := make([]uint64, len(ids))
	var b [4]byte
	for i, id := range ids {
		binary.LittleEndian.PutUint32(b[:], uint32(id))
		h.Write(b[:])
		out[i] = h.Sum64()
	}
	return out
}

func (c *prefixCache) hash(ids []int32) uint64 {
	if len(ids) == 0 {
		return 0
	}
	h := c.prefixHashes(ids)
	return h[len(h)-1]
}

// enabled reports whether the cache stores anything.
func (c *prefixCache) enabled() bool { return c.capacity > 0 }

// restore sets sess to the state after the longest cached prefix of ids and
// returns its length, or resets sess to the zero state and returns 0.
func (c *prefixCache) restore(ids []int32, sess *core.Session) (int, error) {
	if !c.enabled() || len(ids) == 0 {
		return 0, sess.Reset()
	}
	hashes := c.prefixHashes(ids)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	lens := make([]int, 0, len(c.lengths))
	for n := range c.lengths {
		if n <= len(ids) {
			lens = append(lens, n)
		}
	}
	slices.Sort(lens)
	for k := len(lens) - 1; k >= 0; k-- {
		n := lens[k]
		for _, el := range c.byHash[hashes[n-1]] {
			e := el.Value.(*cacheEntry)
			if len(e.ids) != n || !slices.Equal(e.ids, ids[:n]) {
				continue
			}
			if err := sess.SetState(e.st); err != nil {
				return 0, err
			}
			c.lru.MoveToFront(el)
			c.hits++
			c.hitTokens += uint64(n)
			return n, nil
		}
	}
	return 0, sess.Reset()
}

// find returns the entry holding exactly ids. The caller holds c.mu.
func (c *prefixCache) find(ids []int32, h uint64) *list.Element {
	for _, el := range c.byHash[h] {
		if slices.Equal(el.Value.(*cacheEntry).ids, ids) {
			return el
		}
	}
	return nil
}

// store caches a copy of sess's state under ids, unless an entry for ids
// exists already (then it only becomes the most recent).
func (c *prefixCache) store(ids []int32, sess *core.Session) error {
	if !c.enabled() || len(ids) == 0 {
		return nil
	}
	h := c.hash(ids)
	c.mu.Lock()
	if el := c.find(ids, h); el != nil {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	st, err := sess.State()
	if err != nil {
		return err
	}
	c.put(ids, h, st)
	return nil
}

// put adds st (which the cache then owns) under ids, evicting the least
// recently used entries to make room.
func (c *prefixCache) put(ids []int32, h uint64, st *core.State) {
	size := st.Bytes() + 4*int64(len(ids))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.find(ids, h); el != nil { // stored meanwhile by another request
		c.lru.MoveToFront(el)
		st.Free()
		return
	}
	if size > c.capacity {
		st.Free()
		return
	}
	for c.used+size > c.capacity {
		c.remove(c.lru.Back())
		c.evictions++
	}
	el := c.lru.PushFront(&cacheEntry{ids: slices.Clone(ids), hash: h, st: st})
	c.byHash[h] = append(c.byHash[h], el)
	c.lengths[len(ids)]++
	c.used += size
	c.inserts++
}

// remove drops an entry and frees its state. The caller holds c.mu.
func (c *prefixCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	els := c.byHash[e.hash]
	if i := slices.Index(els, el); i >= 0 {
		els = slices.Delete(els, i, i+1)
	}
	if len(els) == 0 {
		delete(c.byHash, e.hash)
	} else {
		c.byHash[e.hash] = els
	}
	if c.lengths[len(e.ids)]--; c.lengths[len(e.ids)] == 0 {
		delete(c.lengths, len(e.ids))
	}
	c.used -= e.st.Bytes() + 4*int64(len(e.ids))
	e.st.Free()
}

// cacheStats is a snapshot of the cache's counters.
type cacheStats struct {
	Entries                                      int
	Bytes, Capacity                              int64
	Lookups, Hits, HitTokens, Inserts, Evictions uint64
}

func (c *prefixCache) stats() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheStats{Entries: c.lru.Len(), Bytes: c.used, Capacity: max(c.capacity, 0),
		Lookups: c.lookups, Hits: c.hits, HitTokens: c.hitTokens, Inserts: c.inserts, Evictions: c.evictions}
}

// close frees every cached state.
func (c *prefixCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back())
	}
}
