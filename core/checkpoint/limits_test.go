package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// torchPickler writes a state dict's pickle the way torch.save does
// (protocol 2): every new object memoized with BINPUT/LONG_BINPUT, repeated
// globals and strings fetched with BINGET, dict items set in batches of
// 1000 (Python's pickler batches).
type torchPickler struct {
	pickler
	memo map[string]int
	next int
}

func (p *torchPickler) put() {
	if p.next < 256 {
		p.op(opBinPut, byte(p.next))
	} else {
		p.op(opLongBinPut)
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(p.next))
	}
	p.next++
}

// once emits a value the first time and a memo get afterwards.
func (p *torchPickler) once(key string, emit func()) {
	if idx, ok := p.memo[key]; ok {
		if idx < 256 {
			p.op(opBinGet, byte(idx))
		} else {
			p.op(opLongBinGet)
			p.b = binary.LittleEndian.AppendUint32(p.b, uint32(idx))
		}
		return
	}
	emit()
	p.memo[key] = p.next
	p.put()
}

func (p *torchPickler) shape(dims []int64) {
	if len(dims) > 3 || len(dims) == 0 {
		p.ints(dims)
	} else {
		for _, d := range dims {
			p.int(d)
		}
		p.op(opTuple1 + byte(len(dims)-1))
	}
	p.put()
}

func torchStatePickle(names []string, shapes [][]int64) []byte {
	p := &torchPickler{memo: map[string]int{}}
	p.op(opProto, 2, opEmptyDict)
	p.put()
	for i, name := range names {
		if i%1000 == 0 {
			if i > 0 {
				p.op(opSetItems)
			}
			p.op(opMark)
		}
		p.str(name)
		p.put()
		p.once("rebuild", func() { p.global("torch._utils", "_rebuild_tensor_v2") })
		p.op(opMark, opMark)
		p.once("'storage'", func() { p.str("storage") })
		p.once("bf16", func() { p.global("torch", "BFloat16Storage") })
		p.str(fmt.Sprint(i))
		p.put()
		p.once("'cpu'", func() { p.str("cpu") })
		p.int(prod(shapes[i]))
		p.op(opTuple)
		p.put()
		p.op(opBinPersID)
		p.int(0)
		p.shape(shapes[i])
		p.shape(contiguous(shapes[i]))
		p.op(opNewFalse)
		p.once("OrderedDict", func() { p.global("collections", "OrderedDict") })
		p.op(opEmptyTuple, opReduce)
		p.put()
		p.op(opTuple)
		p.put()
		p.op(opReduce)
		p.put()
	}
	p.op(opSetItems, opStop)
	return p.b
}

func prod(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// official29B lists the tensors of RWKV-x070-World-2.9B (rwkv7-core.md
// §2.1 and §4: L32, C2560, V65536, LoRA 96/96/64/320, no layer-0 v0/v1/v2):
// 6 + 33·32 − 3 = 1,059 tensors.
func official29B() (names []string, shapes [][]int64) {
	const L, C, V, H, dw, da, dv, dg = 32, 2560, 65536, 40, 96, 96, 64, 320
	add := func(name string, shape ...int64) {
		names = append(names, name)
		shapes = append(shapes, shape)
	}
	add("emb.weight", V, C)
	add("blocks.0.ln0.weight", C)
	add("blocks.0.ln0.bias", C)
	for l := range L {
		b := fmt.Sprintf("blocks.%d.", l)
		for _, n := range []string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"} {
			add(b+n, C)
		}
		for _, n := range []string{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0"} {
			add(b+"att."+n, 1, 1, C)
		}
		add(b+"att.w1", C, dw)
		add(b+"att.w2", dw, C)
		add(b+"att.a0", 1, 1, C)
		add(b+"att.a1", C, da)
		add(b+"att.a2", da, C)
		if l > 0 {
			add(b+"att.v0", 1, 1, C)
			add(b+"att.v1", C, dv)
			add(b+"att.v2", dv, C)
		}
		add(b+"att.g1", C, dg)
		add(b+"att.g2", dg, C)
		add(b+"att.k_k", 1, 1, C)
		add(b+"att.k_a", 1, 1, C)
		add(b+"att.r_k", H, 64)
		for _, n := range []string{"receptance", "key", "value", "output"} {
			add(b+"att."+n+".weight", C, C)
		}
		add(b+"att.ln_x.weight", C)
		add(b+"att.ln_x.bias", C)
		add(b+"ffn.x_k", 1, 1, C)
		add(b+"ffn.key.weight", 4*C, C)
		add(b+"ffn.value.weight", C, 4*C)
	}
	add("ln_out.weight", C)
	add("ln_out.bias", C)
	add("head.weight", V, C)
	return names, shapes
}

// pickleStats runs a pickle as unpickle does, measuring what it needs.
type pickleStats struct{ pushes, memo, stack, marks int }

func runPickle(data []byte) (pickleStats, error) {
	var st pickleStats
	m := &machine{data: data, memo: make(map[uint32]any)}
	for m.pos < len(m.data) {
		op := m.data[m.pos]
		m.pos++
		done, err := m.step(op)
		if err == nil {
			err = m.err
		}
		st.stack = max(st.stack, len(m.stack))
		st.marks = max(st.marks, len(m.marks))
		if err != nil {
			return st, err
		}
		if done {
			break
		}
	}
	st.pushes, st.memo = m.pushes, len(m.memo)
	return st, nil
}

// TestPickleCaps measures what the official 2.9B checkpoint's pickle needs
// and checks that the limits leave it (and checkpoints many times its
// size) plenty of room.
func TestPickleCaps(t *testing.T) {
	names, shapes := official29B()
	if len(names) != 1059 {
		t.Fatalf("%d tensors, want 1059", len(names))
	}
	pkl := torchStatePickle(names, shapes)
	st, err := runPickle(pkl)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2.9B state dict: %d tensors, data.pkl %d bytes, %d values pushed, %d memo entries, stack %d, %d nested marks",
		len(names), len(pkl), st.pushes, st.memo, st.stack, st.marks)
	const headroom = 20
	if len(pkl)*headroom > maxPickle || st.pushes*headroom > maxPushes || st.memo*headroom > maxMemo ||
		st.stack*headroom > maxStack || st.marks*headroom > maxMarks {
		t.Errorf("limits leave less than %d× headroom over the 2.9B checkpoint's needs", headroom)
	}
	root, err := unpickle(pkl)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := root.(*pyDict); !ok || len(d.keys) != len(names) {
		t.Fatalf("unpickled %T", root)
	}
}

// TestPickleMemoryAbuse: pickles of maxPickle bytes that only grow the
// machine's memory (they reached 2–4.6 GB and ran up to 95 s) fail fast
// with ErrPickleLimit and little memory.
func TestPickleMemoryAbuse(t *testing.T) {
	fill := func(head []byte, unit ...byte) []byte {
		b := bytes.Repeat(unit, (maxPickle-len(head))/len(unit))
		return append(append([]byte{}, head...), b...)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"memoize", fill([]byte{opProto, 4, opNone}, opMemoize), "memo entries"},
		{"binput", func() []byte {
			b := []byte{opProto, 2, opNone}
			for i := 0; len(b) < maxPickle-5; i++ {
				b = append(b, opLongBinPut)
				b = binary.LittleEndian.AppendUint32(b, uint32(i))
			}
			return b
		}(), "memo entries"},
		{"dup", fill([]byte{opProto, 2, opNone}, opDup), "on the stack"},
		{"mark", fill([]byte{opProto, 2}, opMark), "nested MARKs"},
		{"nested lists", fill([]byte{opProto, 2, opEmptyList}, opEmptyList, opAppend), "values"},
		{"empty dicts", fill([]byte{opProto, 2, opEmptyList}, opEmptyDict, opAppend), "values"},
		{"strings", fill([]byte{opProto, 2, opEmptyList}, opShortBinUni, 0, opAppend), "values"},
	}
	for _, tc := range tests {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := unpickle(tc.data)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if !errors.Is(err, ErrPickleLimit) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: err = %v, want ErrPickleLimit about %q", tc.name, err, tc.want)
		}
		if alloc > 256<<20 || took > 10*time.Second {
			t.Errorf("%s: %d MB allocated, %v", tc.name, alloc>>20, took)
		}
		t.Logf("%s: %v after %v, %d MB allocated", tc.name, err, took.Round(time.Millisecond), alloc>>20)
	}
}
