package checkpoint

// Test helpers that build PyTorch-style zip checkpoints and safetensors files
// in memory, so that tests can make exactly the valid and corrupt inputs
// they need. The zip writer is hand-rolled (rather than archive/zip.Writer)
// so that it can mimic torch.save's layout (sizes only in the central
// directory, 64-byte aligned data) and force ZIP64 records on small files.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"strings"
)

// pickler writes pickle opcodes.
type pickler struct{ b []byte }

func (p *pickler) op(ops ...byte) *pickler { p.b = append(p.b, ops...); return p }

func (p *pickler) str(s string) *pickler {
	p.b = append(p.b, opBinUnicode)
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}

func (p *pickler) global(module, name string) *pickler {
	p.b = append(p.b, opGlobal)
	p.b = append(p.b, module+"\n"+name+"\n"...)
	return p
}

func (p *pickler) int(v int64) *pickler {
	switch {
	case v >= 0 && v < 256:
		p.b = append(p.b, opBinInt1, byte(v))
	case v >= 0 && v < 65536:
		p.b = append(p.b, opBinInt2)
		p.b = binary.LittleEndian.AppendUint16(p.b, uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.b = append(p.b, opBinInt)
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	default:
		p.b = append(p.b, opLong1, 8)
		p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
	}
	return p
}

func (p *pickler) ints(vs []int64) *pickler {
	p.op(opMark)
	for _, v := range vs {
		p.int(v)
	}
	return p.op(opTuple)
}

// fakeTensor describes one entry of a state dict for statePickle.
type fakeTensor struct {
	name    string
	storage string // storage class, e.g. "BFloat16Storage"
	key     string // storage key (entry data/<key>)
	numel   int64  // storage size in elements
	offset  int64
	shape   []int64
	stride  []int64 // nil: contiguous
	args7   bool    // pass the 7th (metadata) argument
	param   bool    // wrap in torch._utils._rebuild_parameter
}

func contiguous(shape []int64) []int64 {
	s := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// statePickle builds the pickle torch.save writes for a state dict.
// ordered selects an OrderedDict with a _metadata BUILD, as saved straight
// from Module.state_dict().
func statePickle(ts []fakeTensor, ordered bool) []byte {
	p := &pickler{}
	p.op(opProto, 2)
	if ordered {
		p.global("collections", "OrderedDict").op(opEmptyTuple, opReduce)
	} else {
		p.op(opEmptyDict)
	}
	p.op(opBinPut, 0, opMark)
	for _, t := range ts {
		p.str(t.name)
		if t.param {
			p.global("torch._utils", "_rebuild_parameter").op(opMark)
		}
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op(opMark)
		p.op(opMark).str("storage").global("torch", t.storage).str(t.key).str("cpu").int(t.numel).op(opTuple, opBinPersID)
		p.int(t.offset)
		p.ints(t.shape)
		stride := t.stride
		if stride == nil {
			stride = contiguous(t.shape)
		}
		p.ints(stride)
		p.op(opNewFalse)
		p.global("collections", "OrderedDict").op(opEmptyTuple, opReduce)
		if t.args7 {
			p.op(opNone)
		}
		p.op(opTuple, opReduce)
		if t.param {
			p.op(opNewFalse).global("collections", "OrderedDict").op(opEmptyTuple, opReduce).op(opTuple, opReduce)
		}
	}
	p.op(opSetItems)
	if ordered {
		p.op(opEmptyDict).str("_metadata").op(opEmptyDict).str("").op(opEmptyDict).str("version").int(1).
			op(opSetItem, opSetItem, opSetItem, opBuild)
	}
	p.op(opStop)
	return p.b
}

// sparse is a byte image of a file in which unwritten ranges read as zeros,
// so a test can lay out a multi-gigabyte archive without allocating it.
type sparse struct {
	segs []seg
	size int64
}

type seg struct {
	off  int64
	data []byte
}

func (s *sparse) write(b []byte) {
	s.segs = append(s.segs, seg{s.size, append([]byte(nil), b...)})
	s.size += int64(len(b))
}

func (s *sparse) skip(n int64) { s.size += n }

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	clear(p[:n])
	for _, g := range s.segs {
		lo, hi := max(off, g.off), min(off+int64(n), g.off+int64(len(g.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], g.data[lo-g.off:hi-g.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// bytes materializes a small image.
func (s *sparse) bytes() []byte {
	b := make([]byte, s.size)
	s.ReadAt(b, 0)
	return b
}

// zipEntry is one member of an archive built by buildZip.
type zipEntry struct {
	name   string
	data   []byte
	zeros  int64  // when data is nil: this many zero bytes, not materialized
	method uint16 // 0 (stored) unless a test wants otherwise
}

// buildZip lays out entries as torch.save does: data descriptors, sizes
// and CRC only in the central directory and descriptor, data aligned to 64
// bytes by an "FB" extra field. With zip64, every size and offset in the
// central directory goes through ZIP64 extra fields and end records.
func buildZip(entries []zipEntry, zip64 bool) *sparse {
	s := &sparse{}
	le := binary.LittleEndian
	type cdInfo struct {
		e      zipEntry
		crc    uint32
		size   uint64
		offset uint64
	}
	var cd []cdInfo
	for _, e := range entries {
		size := uint64(len(e.data))
		var crc uint32
		if e.data != nil {
			crc = crc32.ChecksumIEEE(e.data)
		} else {
			size = uint64(e.zeros)
		}
		offset := uint64(s.size)
		h := le.AppendUint32(nil, 0x04034b50)
		h = le.AppendUint16(h, 45)     // version needed
		h = le.AppendUint16(h, 0x0808) // data descriptor, UTF-8
		h = le.AppendUint16(h, e.method)
		h = le.AppendUint16(h, 0)    // time
		h = le.AppendUint16(h, 0x21) // date
		h = le.AppendUint32(h, 0)    // crc (in descriptor)
		h = le.AppendUint32(h, 0)    // compressed size
		h = le.AppendUint32(h, 0)    // size
		h = le.AppendUint16(h, uint16(len(e.name)))
		// Pad with an FB extra field so data starts 64-byte aligned.
		base := int64(len(h)) + 2 + int64(len(e.name)) + 4
		pad := (64 - (s.size+base)%64) % 64
		h = le.AppendUint16(h, uint16(4+pad))
		h = append(h, e.name...)
		h = le.AppendUint16(h, 0x4246)
		h = le.AppendUint16(h, uint16(pad))
		h = append(h, make([]byte, pad)...)
		s.write(h)
		if e.data != nil {
			s.write(e.data)
		} else {
			s.skip(e.zeros)
		}
		d := le.AppendUint32(nil, 0x08074b50)
		d = le.AppendUint32(d, crc)
		if zip64 {
			d = le.AppendUint64(d, size)
			d = le.AppendUint64(d, size)
		} else {
			d = le.AppendUint32(d, uint32(size))
			d = le.AppendUint32(d, uint32(size))
		}
		s.write(d)
		cd = append(cd, cdInfo{e, crc, size, offset})
	}
	cdStart := s.size
	for _, c := range cd {
		h := le.AppendUint32(nil, 0x02014b50)
		h = le.AppendUint16(h, 45) // made by
		h = le.AppendUint16(h, 45) // needed
		h = le.AppendUint16(h, 0x0808)
		h = le.AppendUint16(h, c.e.method)
		h = le.AppendUint16(h, 0)
		h = le.AppendUint16(h, 0x21)
		h = le.AppendUint32(h, c.crc)
		var extra []byte
		if zip64 {
			h = le.AppendUint32(h, math.MaxUint32)
			h = le.AppendUint32(h, math.MaxUint32)
			extra = le.AppendUint16(nil, 0x0001)
			extra = le.AppendUint16(extra, 24)
			extra = le.AppendUint64(extra, c.size)
			extra = le.AppendUint64(extra, c.size)
			extra = le.AppendUint64(extra, c.offset)
		} else {
			h = le.AppendUint32(h, uint32(c.size))
			h = le.AppendUint32(h, uint32(c.size))
		}
		h = le.AppendUint16(h, uint16(len(c.e.name)))
		h = le.AppendUint16(h, uint16(len(extra)))
		h = le.AppendUint16(h, 0) // comment
		h = le.AppendUint16(h, 0) // disk
		h = le.AppendUint16(h, 0) // internal attributes
		h = le.AppendUint32(h, 0) // external attributes
		if zip64 {
			h = le.AppendUint32(h, math.MaxUint32)
		} else {
			h = le.AppendUint32(h, uint32(c.offset))
		}
		h = append(h, c.e.name...)
		h = append(h, extra...)
		s.write(h)
	}
	cdSize := s.size - cdStart
	if zip64 {
		eocd64 := s.size
		h := le.AppendUint32(nil, 0x06064b50)
		h = le.AppendUint64(h, 44)
		h = le.AppendUint16(h, 45)
		h = le.AppendUint16(h, 45)
		h = le.AppendUint32(h, 0)
		h = le.AppendUint32(h, 0)
		h = le.AppendUint64(h, uint64(len(cd)))
		h = le.AppendUint64(h, uint64(len(cd)))
		h = le.AppendUint64(h, uint64(cdSize))
		h = le.AppendUint64(h, uint64(cdStart))
		h = le.AppendUint32(h, 0x07064b50) // locator
		h = le.AppendUint32(h, 0)
		h = le.AppendUint64(h, uint64(eocd64))
		h = le.AppendUint32(h, 1)
		s.write(h)
	}
	h := le.AppendUint32(nil, 0x06054b50)
	h = le.AppendUint16(h, 0)
	h = le.AppendUint16(h, 0)
	if zip64 {
		h = le.AppendUint16(h, math.MaxUint16)
		h = le.AppendUint16(h, math.MaxUint16)
		h = le.AppendUint32(h, math.MaxUint32)
		h = le.AppendUint32(h, math.MaxUint32)
	} else {
		h = le.AppendUint16(h, uint16(len(cd)))
		h = le.AppendUint16(h, uint16(len(cd)))
		h = le.AppendUint32(h, uint32(cdSize))
		h = le.AppendUint32(h, uint32(cdStart))
	}
	h = le.AppendUint16(h, 0)
	s.write(h)
	return s
}

// pthArchive wraps a pickle and storages (key -> bytes) into a checkpoint
// archive under prefix (e.g. "archive/").
func pthArchive(prefix string, pkl []byte, storages map[string][]byte, zip64 bool) []byte {
	entries := []zipEntry{{name: prefix + "data.pkl", data: pkl}}
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		entries = append(entries, zipEntry{name: prefix + "data/" + k, data: storages[k]})
	}
	entries = append(entries, zipEntry{name: prefix + "version", data: []byte("3\n")})
	return buildZip(entries, zip64).bytes()
}

// pattern returns n deterministic, distinct-looking bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// stEntry is one tensor of a safetensors file built by buildSafetensors.
type stEntry struct {
	Name    string
	DType   string
	Shape   []int64
	Offsets [2]int64
}

// buildSafetensors writes a safetensors file with the given header entries
// (in order), optional metadata and data buffer. Entries are emitted as
// written, so tests can make invalid offsets.
func buildSafetensors(entries []stEntry, meta map[string]string, data []byte) []byte {
	var sb strings.Builder
	sb.WriteString("{")
	first := true
	if meta != nil {
		m, _ := json.Marshal(meta)
		sb.WriteString(`"__metadata__":`)
		sb.Write(m)
		first = false
	}
	for _, e := range entries {
		if !first {
			sb.WriteString(",")
		}
		first = false
		name, _ := json.Marshal(e.Name)
		shape, _ := json.Marshal(e.Shape)
		if e.Shape == nil {
			shape = []byte("[]")
		}
		fmt.Fprintf(&sb, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, e.DType, shape, e.Offsets[0], e.Offsets[1])
	}
	sb.WriteString("}")
	return rawSafetensors(sb.String(), data)
}

// rawSafetensors frames a header string (padded to 8 bytes) and data.
func rawSafetensors(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}
