package checkpoint

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// repr formats a value the way Python's repr does, for the types the
// fixtures below use. Test-only: it recurses, so it must not see cycles.
func repr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return "'" + v + "'"
	case []byte:
		return "b'" + string(v) + "'"
	case pyTuple:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = repr(x)
		}
		if len(v) == 1 {
			return "(" + parts[0] + ",)"
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case *pyList:
		parts := make([]string, len(v.items))
		for i, x := range v.items {
			parts[i] = repr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *pyDict:
		parts := make([]string, len(v.keys))
		for i := range v.keys {
			parts[i] = repr(v.keys[i]) + ": " + repr(v.vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("<%s>", typeName(v))
}

// The hex pickles were written by CPython 3's pickle.dumps; the expected
// strings are CPython's repr of the pickled object.
func TestUnpicklePython(t *testing.T) {
	const value = `{'a': [1, 2, (3, 4.5)], 'b': None, 'c': True, 'd': -1099511627776, 'e': 'é', 'f': (), ` +
		`'h': {1: 'x'}, 'i': 300, 'j': 70000, 'k': False, 'l': (1,), 'm': (1, 2, 3), 'n': -5, 'o': 9223372036854775807}`
	tests := []struct {
		name, hex, want string
	}{
		{"protocol 2", "80027d71002858010000006171015d7102284b014b024b034740120000000000008671036558010000006271044e58010000006371058858010000006471068a060000000000ff58010000006571075802000000c3a97108580100000066710929580100000068710a7d710b4b01580100000078710c73580100000069710d4d2c0158010000006a710e4a7011010058010000006b710f8958010000006c71104b0185711158010000006d71124b014b024b0387711358010000006e71144afbffffff58010000006f71158a08ffffffffffffff7f752e", value},
		{"protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, SHORT_BINBYTES)", "80049581000000000000007d94288c0161945d94284b014b024b034740120000000000008694658c0162944e8c016394888c0164948a060000000000ff8c0165948c02c3a9948c016694298c01679443027879948c0168947d944b018c017894738c0169944d2c018c016a944a701101008c016b94898c016c944b0185948c016d944b014b024b038794752e",
			`{'a': [1, 2, (3, 4.5)], 'b': None, 'c': True, 'd': -1099511627776, 'e': 'é', 'f': (), 'g': b'xy', 'h': {1: 'x'}, 'i': 300, 'j': 70000, 'k': False, 'l': (1,), 'm': (1, 2, 3)}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			v, err := unpickle(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := repr(v); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestUnpickleErrors(t *testing.T) {
	p := func() *pickler { return (&pickler{}).op(opProto, 2) }
	tests := []struct {
		name string
		data []byte
		err  error
		msg  string
	}{
		// CPython pickles of os.system and of bytes under protocol 2.
		{"os.system", mustHex("800263706f7369780a73797374656d0a71002e"), ErrGlobal, `"posix.system"`},
		{"bytes via _codecs.encode", mustHex("80027d71005801000000677101635f636f646563730a656e636f64650a710258020000007879710358060000006c6174696e317104867105527106732e"), ErrGlobal, `"_codecs.encode"`},
		{"empty", nil, errPickle, "no STOP"},
		{"no STOP", p().op(opNone).b, errPickle, "no STOP"},
		{"unknown opcode", p().op('I').b, errPickle, "offset 2 (opcode 0x49): malformed pickle: unsupported opcode"},
		{"protocol 6", []byte{opProto, 6, opNone, opStop}, errPickle, "unsupported protocol 6"},
		{"stack underflow", p().op(opPop).b, errPickle, "stack underflow"},
		{"pop across a mark", p().op(opNone, opMark, opPop).b, errPickle, "stack underflow"},
		{"TUPLE without MARK", p().op(opNone, opTuple).b, errPickle, "no MARK"},
		{"STOP with a mark left", p().op(opMark, opNone, opStop).b, errPickle, "STOP with 1 values and 1 marks"},
		{"STOP with two values", p().op(opNone, opNone, opStop).b, errPickle, "STOP with 2 values"},
		{"undefined memo", p().op(opBinGet, 3).b, errPickle, "memo key 3 not defined"},
		{"truncated BINUNICODE", p().op(opBinUnicode, 0xff, 0xff, 0xff, 0x7f, 'a').b, errPickle, "runs past the end"},
		{"invalid UTF-8", p().op(opShortBinUni, 1, 0xff, opStop).b, errPickle, "not valid UTF-8"},
		{"unterminated GLOBAL", p().op(opGlobal, 'o', 's').b, errPickle, "unterminated"},
		{"SETITEMS odd", p().op(opEmptyDict, opMark, opNone, opSetItems).b, errPickle, "odd number"},
		{"SETITEM on a list", p().op(opEmptyList, opNone, opNone, opSetItem).b, errPickle, "SETITEM on list"},
		{"APPEND to a dict", p().op(opEmptyDict, opNone, opAppend).b, errPickle, "APPEND to dict"},
		{"LONG1 of 9 bytes", p().op(opLong1, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9).b, errPickle, "too large"},
		{"REDUCE of a string", p().str("x").op(opEmptyTuple, opReduce).b, errPickle, "REDUCE calls a str"},
		{"OrderedDict with arguments", p().global("collections", "OrderedDict").op(opNone, opTuple1, opReduce).b, errPickle, "OrderedDict called with 1 arguments"},
		{"call a storage class", p().global("torch", "FloatStorage").op(opEmptyTuple, opReduce).b, ErrGlobal, `"torch.FloatStorage" is not callable`},
		{"persistent id not a tuple", p().str("x").op(opBinPersID).b, errPickle, "persistent id is a str"},
		{"persistent id of a module", p().op(opMark).str("module").global("torch", "FloatStorage").str("0").str("cpu").int(1).op(opTuple, opBinPersID).b, errPickle, "not 'storage'"},
		{"BUILD on a string", p().str("x").op(opNone, opBuild).b, errPickle, "BUILD on str"},
		{"STACK_GLOBAL of ints", p().int(1).int(2).op(opStackGlobal).b, errPickle, "STACK_GLOBAL of int and int"},
		{"rebuild_parameter of an int", p().global("torch._utils", "_rebuild_parameter").int(1).op(opNewFalse, opNone, opTuple3, opReduce).b, errPickle, "_rebuild_parameter of type int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := unpickle(tt.data)
			if err == nil {
				t.Fatalf("unpickle succeeded with %s", typeName(v))
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

// TestUnpickleSelfReference appends a list to itself: the machine must
// neither loop nor recurse.
func TestUnpickleSelfReference(t *testing.T) {
	data := (&pickler{}).op(opProto, 2, opEmptyList, opBinPut, 0, opBinGet, 0, opAppend, opStop).b
	v, err := unpickle(data)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := v.(*pyList)
	if !ok || len(l.items) != 1 || l.items[0] != any(l) {
		t.Errorf("got %s", typeName(v))
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
