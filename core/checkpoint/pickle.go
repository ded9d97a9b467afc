package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/goose-rwkv/goose/kernels"
)

// This file holds a small pickle virtual machine. It understands the subset
// of the pickle protocol that torch.save writes for a state dict, and it
// executes nothing: the only callables are a fixed allow-list of
// tensor-building globals, each implemented here in Go.

// Pickle opcodes (see CPython Lib/pickletools.py for the definitions).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opBinFloat       = 'G'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opBinInt2        = 'M'
	opNone           = 'N'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opBinString      = 'T'
	opShortBinString = 'U'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opAppends        = 'e'
	opBinGet         = 'h'
	opLongBinGet     = 'j'
	opEmptyList      = ']'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opSetItems       = 'u'
	opEmptyDict      = '}'
	opEmptyTuple     = ')'
	opProto          = 0x80
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
)

// Errors of the pickle machine. They are wrapped with the offset of the
// offending opcode.
var (
	// ErrGlobal reports a pickle that refers to a Python global outside the
	// allow-list of tensor-building functions and storage classes.
	ErrGlobal = errors.New("unsupported global")
	// ErrPickleLimit reports a pickle that needs more memory than any real
	// checkpoint does (see the limits below): a hostile or corrupt file.
	ErrPickleLimit = errors.New("pickle exceeds a limit")
	// errPickle is the base of every other malformed-pickle error.
	errPickle = errors.New("malformed pickle")
)

// Limits of the pickle machine. A state dict's pickle, as torch.save
// writes it, pushes about 22 values, memoizes about 8 and keeps 2 on the
// stack per tensor (its dict items are set in batches of 1000), under 3
// nested marks. The official 2.9B RWKV-7 checkpoint has 1,062 tensors:
// 23,500 values, 8,600 memo entries, a stack of 2,010 (TestPickleCaps
// measures a pickle of its names and shapes). The limits leave room for
// checkpoints twenty times as large, and keep a hostile pickle under
// ~100 MB of memory and well under a second before it fails.
const (
	maxPushes = 1 << 19 // values pushed in all
	maxMemo   = 1 << 18 // memo entries
	maxStack  = 1 << 16 // values on the stack at once
	maxMarks  = 64      // nested MARKs
)

// Values on the machine's stack. Strings, int64, float64, bool and nil are
// stored as themselves.
type (
	// pyTuple is an immutable Python tuple.
	pyTuple []any
	// pyList is a Python list; a pointer so APPEND mutates it in place.
	pyList struct{ items []any }
	// pyDict is an insertion-ordered Python dict (dict and OrderedDict).
	pyDict struct {
		keys, vals []any
		byStr      map[string]int // index of string keys, for replacement
	}
	// pyGlobal is an allow-listed global, pushed by GLOBAL.
	pyGlobal struct{ module, name string }
	// pyStorage is the object a persistent id resolves to: one storage
	// entry of the archive.
	pyStorage struct {
		dtype kernels.DType
		key   string
		numel int64
	}
	// pyTensor is the result of _rebuild_tensor_v2.
	pyTensor struct {
		storage *pyStorage
		offset  int64 // in elements
		shape   []int
		stride  []int64
	}
)

func (d *pyDict) set(k, v any) {
	if s, ok := k.(string); ok {
		if i, ok := d.byStr[s]; ok {
			d.vals[i] = v
			return
		}
		if d.byStr == nil {
			d.byStr = make(map[string]int)
		}
		d.byStr[s] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// Allow-listed globals.
var (
	globalOrderedDict     = pyGlobal{"collections", "OrderedDict"}
	globalRebuildTensorV2 = pyGlobal{"torch._utils", "_rebuild_tensor_v2"}
	globalRebuildParam    = pyGlobal{"torch._utils", "_rebuild_parameter"}
)

// storageDType maps the legacy typed storage classes torch writes into
// persistent ids to element types.
func storageDType(g pyGlobal) (kernels.DType, bool) {
	if g.module != "torch" {
		return 0, false
	}
	switch g.name {
	case "BFloat16Storage":
		return kernels.BF16, true
	case "HalfStorage":
		return kernels.F16, true
	case "FloatStorage":
		return kernels.F32, true
	}
	return 0, false
}

func allowedGlobal(g pyGlobal) bool {
	switch g {
	case globalOrderedDict, globalRebuildTensorV2, globalRebuildParam:
		return true
	}
	_, ok := storageDType(g)
	return ok
}

// typeName names a value's Python type for error messages. It never
// recurses, so self-referencing lists are harmless.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return v.module + "." + v.name
	case *pyStorage:
		return "storage"
	case *pyTensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// machine is the state of one unpickling run.
type machine struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int // stack heights at each MARK
	memo   map[uint32]any
	pushes int // values pushed so far (bounded by maxPushes)
	// err is set by push when a limit is exceeded; step returns it.
	err error
}

// unpickle runs the pickle in data and returns the object it builds.
func unpickle(data []byte) (any, error) {
	m := &machine{data: data, memo: make(map[uint32]any)}
	for {
		if m.pos >= len(m.data) {
			return nil, fmt.Errorf("%w: no STOP opcode before end of data", errPickle)
		}
		start := m.pos
		op := m.data[m.pos]
		m.pos++
		done, err := m.step(op)
		if err == nil {
			err = m.err
		}
		if err != nil {
			return nil, fmt.Errorf("data.pkl offset %d (opcode 0x%02x): %w", start, op, err)
		}
		if done {
			if len(m.stack) != 1 || len(m.marks) != 0 {
				return nil, fmt.Errorf("data.pkl offset %d: %w: STOP with %d values and %d marks on the stack",
					start, errPickle, len(m.stack), len(m.marks))
			}
			return m.stack[0], nil
		}
	}
}

func (m *machine) read(n int) ([]byte, error) {
	if n < 0 || n > len(m.data)-m.pos {
		return nil, fmt.Errorf("%w: argument of %d bytes runs past the end", errPickle, n)
	}
	b := m.data[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *machine) readUint(n int) (uint64, error) {
	b, err := m.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// readLine reads a newline-terminated argument (GLOBAL's operands).
func (m *machine) readLine() (string, error) {
	for i := m.pos; i < len(m.data); i++ {
		if m.data[i] == '\n' {
			s := string(m.data[m.pos:i])
			m.pos = i + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("%w: unterminated line argument", errPickle)
}

// push puts v on the stack. Past a limit it records ErrPickleLimit in
// m.err (returned after the current opcode) and drops v.
func (m *machine) push(v any) {
	m.pushes++
	switch {
	case m.err != nil:
		return
	case m.pushes > maxPushes:
		m.err = fmt.Errorf("%w: more than %d values (a real checkpoint pushes about 22 per tensor)", ErrPickleLimit, maxPushes)
		return
	case len(m.stack) >= maxStack:
		m.err = fmt.Errorf("%w: more than %d values on the stack", ErrPickleLimit, maxStack)
		return
	}
	m.stack = append(m.stack, v)
}

func (m *machine) pop() (any, error) {
	n := len(m.stack)
	if n == 0 || (len(m.marks) > 0 && m.marks[len(m.marks)-1] >= n) {
		return nil, fmt.Errorf("%w: stack underflow", errPickle)
	}
	v := m.stack[n-1]
	m.stack = m.stack[:n-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	n := len(m.stack)
	if n == 0 || (len(m.marks) > 0 && m.marks[len(m.marks)-1] >= n) {
		return nil, fmt.Errorf("%w: stack underflow", errPickle)
	}
	return m.stack[n-1], nil
}

// popMark pops everything above the last MARK and the mark itself.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, fmt.Errorf("%w: no MARK on the stack", errPickle)
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := make([]any, len(m.stack)-k)
	copy(items, m.stack[k:])
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) popN(n int) ([]any, error) {
	items := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := m.pop()
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

func (m *machine) putMemo(idx uint32) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	if _, ok := m.memo[idx]; !ok && len(m.memo) >= maxMemo {
		return fmt.Errorf("%w: more than %d memo entries (a real checkpoint memoizes about 8 per tensor)", ErrPickleLimit, maxMemo)
	}
	m.memo[idx] = v
	return nil
}

func (m *machine) getMemo(idx uint32) error {
	v, ok := m.memo[idx]
	if !ok {
		return fmt.Errorf("%w: memo key %d not defined", errPickle, idx)
	}
	m.push(v)
	return nil
}

func (m *machine) pushString(n uint64, text bool) error {
	if n > uint64(len(m.data)-m.pos) {
		return fmt.Errorf("%w: string of %d bytes runs past the end", errPickle, n)
	}
	b, err := m.read(int(n))
	if err != nil {
		return err
	}
	if text && !utf8.Valid(b) {
		return fmt.Errorf("%w: string is not valid UTF-8", errPickle)
	}
	m.push(string(b))
	return nil
}

func (m *machine) pushGlobal(module, name string) error {
	g := pyGlobal{module, name}
	if !allowedGlobal(g) {
		return fmt.Errorf("%w %q", ErrGlobal, module+"."+name)
	}
	m.push(g)
	return nil
}

// step executes one opcode. It reports done at STOP.
func (m *machine) step(op byte) (done bool, err error) {
	switch op {
	case opProto:
		v, err := m.readUint(1)
		if err != nil {
			return false, err
		}
		if v > 5 {
			return false, fmt.Errorf("%w: unsupported protocol %d", errPickle, v)
		}
	case opFrame:
		if _, err := m.readUint(8); err != nil {
			return false, err
		}
	case opStop:
		return true, nil

	case opMark:
		// Marks are kept apart from the values, as stack heights.
		if len(m.marks) >= maxMarks {
			return false, fmt.Errorf("%w: more than %d nested MARKs", ErrPickleLimit, maxMarks)
		}
		m.marks = append(m.marks, len(m.stack))
	case opPop:
		if _, err := m.pop(); err != nil {
			return false, err
		}
	case opPopMark:
		if _, err := m.popMark(); err != nil {
			return false, err
		}
	case opDup:
		v, err := m.top()
		if err != nil {
			return false, err
		}
		m.push(v)

	case opGlobal:
		module, err := m.readLine()
		if err != nil {
			return false, err
		}
		name, err := m.readLine()
		if err != nil {
			return false, err
		}
		return false, m.pushGlobal(module, name)
	case opStackGlobal:
		items, err := m.popN(2)
		if err != nil {
			return false, err
		}
		module, ok1 := items[0].(string)
		name, ok2 := items[1].(string)
		if !ok1 || !ok2 {
			return false, fmt.Errorf("%w: STACK_GLOBAL of %s and %s", errPickle, typeName(items[0]), typeName(items[1]))
		}
		return false, m.pushGlobal(module, name)

	case opBinPut, opLongBinPut, opBinGet, opLongBinGet:
		// A memo index of 1 or 4 bytes.
		width := 1
		if op == opLongBinPut || op == opLongBinGet {
			width = 4
		}
		idx, err := m.readUint(width)
		if err != nil {
			return false, err
		}
		if op == opBinPut || op == opLongBinPut {
			return false, m.putMemo(uint32(idx))
		}
		return false, m.getMemo(uint32(idx))
	case opMemoize:
		return false, m.putMemo(uint32(len(m.memo)))

	case opEmptyTuple:
		m.push(pyTuple{})
	case opTuple:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		m.push(pyTuple(items))
	case opTuple1, opTuple2, opTuple3:
		items, err := m.popN(int(op-opTuple1) + 1)
		if err != nil {
			return false, err
		}
		m.push(pyTuple(items))

	case opEmptyList:
		m.push(&pyList{})
	case opAppend:
		v, err := m.pop()
		if err != nil {
			return false, err
		}
		t, err := m.top()
		if err != nil {
			return false, err
		}
		l, ok := t.(*pyList)
		if !ok {
			return false, fmt.Errorf("%w: APPEND to %s", errPickle, typeName(t))
		}
		l.items = append(l.items, v)
	case opAppends:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		t, err := m.top()
		if err != nil {
			return false, err
		}
		l, ok := t.(*pyList)
		if !ok {
			return false, fmt.Errorf("%w: APPENDS to %s", errPickle, typeName(t))
		}
		l.items = append(l.items, items...)

	case opEmptyDict:
		m.push(&pyDict{})
	case opSetItem:
		kv, err := m.popN(2)
		if err != nil {
			return false, err
		}
		t, err := m.top()
		if err != nil {
			return false, err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return false, fmt.Errorf("%w: SETITEM on %s", errPickle, typeName(t))
		}
		d.set(kv[0], kv[1])
	case opSetItems:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		if len(items)%2 != 0 {
			return false, fmt.Errorf("%w: SETITEMS with an odd number (%d) of items", errPickle, len(items))
		}
		t, err := m.top()
		if err != nil {
			return false, err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return false, fmt.Errorf("%w: SETITEMS on %s", errPickle, typeName(t))
		}
		for i := 0; i < len(items); i += 2 {
			d.set(items[i], items[i+1])
		}

	case opBinUnicode, opBinUnicode8, opShortBinUni, opBinString, opShortBinString:
		// A length of 1, 4 or 8 bytes, then the string: UTF-8 for the
		// unicode opcodes, raw bytes for the (protocol 0–2) string ones.
		width := 4
		switch op {
		case opShortBinUni, opShortBinString:
			width = 1
		case opBinUnicode8:
			width = 8
		}
		n, err := m.readUint(width)
		if err != nil {
			return false, err
		}
		return false, m.pushString(n, op == opBinUnicode || op == opBinUnicode8 || op == opShortBinUni)
	case opBinBytes, opShortBinBytes:
		w := 4
		if op == opShortBinBytes {
			w = 1
		}
		n, err := m.readUint(w)
		if err != nil {
			return false, err
		}
		if n > uint64(len(m.data)-m.pos) {
			return false, fmt.Errorf("%w: bytes of length %d run past the end", errPickle, n)
		}
		b, _ := m.read(int(n))
		m.push(append([]byte(nil), b...))

	case opBinInt:
		v, err := m.readUint(4)
		if err != nil {
			return false, err
		}
		m.push(int64(int32(uint32(v))))
	case opBinInt1:
		v, err := m.readUint(1)
		if err != nil {
			return false, err
		}
		m.push(int64(v))
	case opBinInt2:
		v, err := m.readUint(2)
		if err != nil {
			return false, err
		}
		m.push(int64(v))
	case opLong1, opLong4:
		w := 1
		if op == opLong4 {
			w = 4
		}
		n, err := m.readUint(w)
		if err != nil {
			return false, err
		}
		if n > 8 {
			return false, fmt.Errorf("%w: integer of %d bytes is too large", errPickle, n)
		}
		b, err := m.read(int(n))
		if err != nil {
			return false, err
		}
		var v int64
		if n > 0 {
			var u uint64
			for i := int(n) - 1; i >= 0; i-- {
				u = u<<8 | uint64(b[i])
			}
			// Sign-extend from n bytes.
			shift := 64 - 8*uint(n)
			v = int64(u<<shift) >> shift
		}
		m.push(v)
	case opBinFloat:
		b, err := m.read(8)
		if err != nil {
			return false, err
		}
		m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opNone:
		m.push(nil)
	case opNewTrue:
		m.push(true)
	case opNewFalse:
		m.push(false)

	case opBinPersID:
		pid, err := m.pop()
		if err != nil {
			return false, err
		}
		s, err := persistentLoad(pid)
		if err != nil {
			return false, err
		}
		m.push(s)
	case opReduce:
		items, err := m.popN(2)
		if err != nil {
			return false, err
		}
		v, err := call(items[0], items[1])
		if err != nil {
			return false, err
		}
		m.push(v)
	case opBuild:
		if _, err := m.pop(); err != nil { // the state
			return false, err
		}
		t, err := m.top()
		if err != nil {
			return false, err
		}
		// A state_dict carries a _metadata attribute (module versions);
		// parameters may carry Python attributes. Neither matters here.
		switch t.(type) {
		case *pyDict, *pyTensor:
		default:
			return false, fmt.Errorf("%w: BUILD on %s", errPickle, typeName(t))
		}
	default:
		return false, fmt.Errorf("%w: unsupported opcode", errPickle)
	}
	return false, nil
}

// persistentLoad resolves a persistent id
// ('storage', StorageClass, key, location, numel) to a storage.
func persistentLoad(pid any) (*pyStorage, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("%w: persistent id is a %s, want a 5-tuple", errPickle, typeName(pid))
	}
	if s, ok := t[0].(string); !ok || s != "storage" {
		return nil, fmt.Errorf("%w: persistent id kind is not 'storage'", errPickle)
	}
	g, ok := t[1].(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("%w: storage class is a %s", errPickle, typeName(t[1]))
	}
	dt, ok := storageDType(g)
	if !ok {
		return nil, fmt.Errorf("%w %q as a storage class", ErrGlobal, g.module+"."+g.name)
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, fmt.Errorf("%w: storage key is a %s", errPickle, typeName(t[2]))
	}
	if _, ok := t[3].(string); !ok {
		return nil, fmt.Errorf("%w: storage location is a %s", errPickle, typeName(t[3]))
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("%w: storage size is not a non-negative int", errPickle)
	}
	return &pyStorage{dtype: dt, key: key, numel: numel}, nil
}

// call applies an allow-listed callable to an argument tuple.
func call(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("%w: REDUCE calls a %s", errPickle, typeName(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%w: REDUCE arguments are a %s", errPickle, typeName(args))
	}
	switch g {
	case globalOrderedDict:
		if len(a) != 0 {
			return nil, fmt.Errorf("%w: OrderedDict called with %d arguments", errPickle, len(a))
		}
		return &pyDict{}, nil
	case globalRebuildTensorV2:
		return rebuildTensor(a)
	case globalRebuildParam:
		// _rebuild_parameter(data, requires_grad, backward_hooks)
		if len(a) != 3 {
			return nil, fmt.Errorf("%w: _rebuild_parameter called with %d arguments, want 3", errPickle, len(a))
		}
		t, ok := a[0].(*pyTensor)
		if !ok {
			return nil, fmt.Errorf("%w: _rebuild_parameter of type %s", errPickle, typeName(a[0]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w %q is not callable", ErrGlobal, g.module+"."+g.name)
}

// rebuildTensor implements _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensor(a pyTuple) (*pyTensor, error) {
	if len(a) != 6 && len(a) != 7 {
		return nil, fmt.Errorf("%w: _rebuild_tensor_v2 called with %d arguments, want 6 or 7", errPickle, len(a))
	}
	st, ok := a[0].(*pyStorage)
	if !ok {
		return nil, fmt.Errorf("%w: tensor storage is a %s", errPickle, typeName(a[0]))
	}
	off, ok := a[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("%w: storage offset is not a non-negative int", ErrShape)
	}
	size, ok := a[2].(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%w: size is a %s", ErrShape, typeName(a[2]))
	}
	stride, ok := a[3].(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%w: stride is a %s", ErrShape, typeName(a[3]))
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("%w: %d sizes but %d strides", ErrShape, len(size), len(stride))
	}
	t := &pyTensor{storage: st, offset: off, shape: make([]int, len(size)), stride: make([]int64, len(size))}
	for i := range size {
		n, ok := size[i].(int64)
		if !ok || n < 0 || int64(int(n)) != n {
			return nil, fmt.Errorf("%w: dimension %d is not a valid size", ErrShape, i)
		}
		s, ok := stride[i].(int64)
		if !ok {
			return nil, fmt.Errorf("%w: stride %d is not an int", ErrShape, i)
		}
		t.shape[i] = int(n)
		t.stride[i] = s
	}
	return t, nil
}
