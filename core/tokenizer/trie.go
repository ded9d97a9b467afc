package tokenizer

import (
	"math/bits"
	"slices"
)

// trie is a double-array trie over token bytes. The child of the node in
// cell p for byte c is cell q = cells[p].base + c, provided that
// cells[q].check == p. A cell's id is the token that ends there (0 if none).
// Each step of a lookup is one add and one compare, which makes encoding
// fast. For World the array has about 1.06 cells per trie node (123k
// cells, 12 bytes each).
type trie struct {
	cells []trieCell
}

type trieCell struct {
	base  int32 // children of this node are at base+c
	check int32 // parent cell, or -1 if the cell is free
	id    int32 // token ending at this node, 0 if none
}

// trieRoot is the cell of the root node.
const trieRoot = 0

// child returns the cell of node p's child for byte c, or -1 if none.
func (t *trie) child(p int32, c byte) int32 {
	q := t.cells[p].base + int32(c)
	if uint(q) >= uint(len(t.cells)) || t.cells[q].check != p {
		return -1
	}
	return q
}

// trieBuilder places nodes into the double array. An occupancy bitmap
// (small enough to stay in the L1 cache) makes finding room for a node cheap.
type trieBuilder struct {
	cells     []trieCell
	used      []uint64 // bit k set: cells[k] is taken
	firstFree int      // no free cell below this one
	multiFrom int      // where searches for multi-child nodes start
	keys      []entry  // sorted by bytes, no duplicates
	buf       []byte   // the keys' bytes
	labels    []byte   // scratch
}

// buildTrie builds the trie of keys, which are sorted by their bytes in buf
// and have no duplicates.
func buildTrie(keys []entry, buf []byte) trie {
	b := &trieBuilder{keys: keys, buf: buf}
	b.grow(len(keys)*2 + 256)
	b.occupy(trieRoot, trieRoot) // the root has no parent
	b.place(trieRoot, 0, len(keys), 0)
	// Drop the free tail; lookups check bounds.
	end := len(b.cells)
	for end > 1 && b.cells[end-1].check < 0 {
		end--
	}
	return trie{cells: slices.Clip(b.cells[:end])}
}

// grow makes sure cells[:n] exist, new ones free.
func (b *trieBuilder) grow(n int) {
	if n <= len(b.cells) {
		return
	}
	n = max(n, len(b.cells)+len(b.cells)/4)
	for len(b.cells) < n {
		b.cells = append(b.cells, trieCell{check: -1})
	}
	for len(b.used)*64 < n {
		b.used = append(b.used, 0)
	}
}

// occupy marks free cell k as a child of p.
func (b *trieBuilder) occupy(k, p int32) {
	b.cells[k].check = p
	b.used[k/64] |= 1 << (k % 64)
	if int(k) == b.firstFree {
		b.firstFree = b.nextFree(b.firstFree + 1)
	}
}

// isFree reports whether cell k (which must exist) is free.
func (b *trieBuilder) isFree(k int) bool {
	return b.used[k/64]&(1<<(k%64)) == 0
}

// nextFree returns the first free cell at or after k; it may be
// len(b.cells), a cell not yet made.
func (b *trieBuilder) nextFree(k int) int {
	w := k / 64
	if w >= len(b.used) {
		return k
	}
	free := ^b.used[w] >> (k % 64)
	if free != 0 {
		return k + bits.TrailingZeros64(free)
	}
	for w++; w < len(b.used); w++ {
		if free := ^b.used[w]; free != 0 {
			return w*64 + bits.TrailingZeros64(free)
		}
	}
	return len(b.used) * 64
}

// place fills in node p, whose keys are keys[lo:hi]; they all share their
// first depth bytes.
func (b *trieBuilder) place(p int32, lo, hi, depth int) {
	if lo < hi && int(b.keys[lo].n) == depth {
		b.cells[p].id = b.keys[lo].id
		lo++
	}
	if lo == hi {
		return
	}
	label := func(i int) byte { return b.buf[int(b.keys[i].off)+depth] }
	labels := b.labels[:0]
	for i := lo; i < hi; i++ {
		if i == lo || label(i) != label(i-1) {
			labels = append(labels, label(i))
		}
	}
	b.labels = labels
	base := b.findBase(labels)
	b.cells[p].base = base
	for _, c := range labels {
		b.occupy(base+int32(c), p)
	}
	// Recurse into each group of keys that share the byte at depth. The
	// scratch labels may be overwritten by then, so regroup from the keys.
	for i := lo; i < hi; {
		c := label(i)
		j := i + 1
		for j < hi && label(j) == c {
			j++
		}
		b.place(base+int32(c), i, j, depth+1)
		i = j
	}
}

// findBase returns a base ≥ 1 such that base+c is free for every c in
// labels (sorted ascending), growing the array when needed.
//
// Nodes with one child fill the first free cell. A node with several
// children may need many tries where the array is crowded; once a search
// takes more than maxTries, later multi-child searches start where it ended
// (multiFrom), leaving the crowded holes to one-child nodes.
func (b *trieBuilder) findBase(labels []byte) int32 {
	const maxTries = 32
	first := int(labels[0])
	start := b.firstFree
	if len(labels) > 1 {
		start = max(start, b.multiFrom)
	}
	tries := 0
	for q := b.nextFree(max(start, first+1)); ; q = b.nextFree(q + 1) {
		if tries++; tries > maxTries && len(labels) > 1 {
			b.multiFrom = q
		}
		base := q - first
		b.grow(base + 256)
		ok := true
		for _, c := range labels[1:] {
			if !b.isFree(base + int(c)) {
				ok = false
				break
			}
		}
		if ok {
			return int32(base)
		}
	}
}
