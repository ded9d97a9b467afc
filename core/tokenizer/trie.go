package tokenizer

// trie is a double-array trie over token bytes. The child of the node in
// cell p for byte c is cell q = cells[p].base + c, provided that
// cells[q].check == p. A cell's id is the token that ends there (0 if none).
// Each step of a lookup is one add and one compare, which makes encoding
// fast; the array is about 1.5 cells per trie node.
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

// trieBuilder places nodes into the double array. Free cells form a doubly
// linked list (in cell order) so that finding room for a node skips the
// occupied ones.
type trieBuilder struct {
	cells      []trieCell
	next, prev []int32 // free list links; -1 ends it
	head, tail int32   // first and last free cell, -1 if none
	keys       []entry // sorted by bytes, no duplicates
	buf        []byte  // the keys' bytes
	labels     []byte  // scratch
}

// buildTrie builds the trie of keys, which are sorted by their bytes in buf
// and have no duplicates.
func buildTrie(keys []entry, buf []byte) trie {
	b := &trieBuilder{keys: keys, buf: buf, head: -1, tail: -1}
	b.cells = append(b.cells, trieCell{check: trieRoot}) // the root, taken
	b.next = append(b.next, -1)
	b.prev = append(b.prev, -1)
	b.grow(len(keys)*2 + 256)
	b.place(trieRoot, 0, len(keys), 0)
	// Drop the free tail; lookups check bounds.
	end := len(b.cells)
	for end > 1 && b.cells[end-1].check < 0 {
		end--
	}
	return trie{cells: b.cells[:end:end]}
}

// grow makes sure cells[:n] exist, new ones free.
func (b *trieBuilder) grow(n int) {
	for len(b.cells) < n {
		k := int32(len(b.cells))
		b.cells = append(b.cells, trieCell{check: -1})
		b.next = append(b.next, -1)
		b.prev = append(b.prev, b.tail)
		if b.tail >= 0 {
			b.next[b.tail] = k
		} else {
			b.head = k
		}
		b.tail = k
	}
}

// occupy marks free cell k as a child of p.
func (b *trieBuilder) occupy(k, p int32) {
	b.cells[k].check = p
	n, v := b.next[k], b.prev[k]
	if v >= 0 {
		b.next[v] = n
	} else {
		b.head = n
	}
	if n >= 0 {
		b.prev[n] = v
	} else {
		b.tail = v
	}
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
// labels (sorted ascending), trying the free cells in order.
func (b *trieBuilder) findBase(labels []byte) int32 {
	first := int32(labels[0])
	for q := b.head; ; q = b.next[q] {
		if q < 0 {
			// No room among the free cells: add more at the end.
			q = int32(len(b.cells))
			b.grow(len(b.cells) + 256)
		}
		base := q - first
		if base < 1 {
			continue
		}
		if int(base)+256 > len(b.cells) {
			b.grow(int(base) + 256)
		}
		ok := true
		for _, c := range labels[1:] {
			if b.cells[base+int32(c)].check >= 0 {
				ok = false
				break
			}
		}
		if ok {
			return base
		}
	}
}
