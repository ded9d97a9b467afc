package cu

import (
	"fmt"
	"runtime"
	"unsafe"
)

// NVRTC holds the entry points of libnvrtc, CUDA's run-time compiler.
type NVRTC struct {
	Path         string
	Major, Minor int

	nvrtcVersion           func(major, minor *int32) int32
	nvrtcGetErrorString    func(code int32) string
	nvrtcCreateProgram     func(p *uintptr, src, name string, nh int32, h, inc *uintptr) int32
	nvrtcCompileProgram    func(p uintptr, n int32, opts *uintptr) int32
	nvrtcGetProgramLogSize func(p uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(p uintptr, log *byte) int32
	nvrtcGetCUBINSize      func(p uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(p uintptr, out *byte) int32
	nvrtcDestroyProgram    func(p *uintptr) int32
}

// LoadNVRTC opens libnvrtc, preferring a version whose major number is at
// most maxMajor (the driver's), so that the code it builds loads.
func LoadNVRTC(maxMajor int) (*NVRTC, error) {
	var names []string
	for m := maxMajor; m >= 11 && len(names) < 4; m-- {
		names = append(names, fmt.Sprintf("libnvrtc.so.%d", m))
	}
	names = append(names, "libnvrtc.so")
	var firstErr error
	for _, name := range names {
		h, path, err := open(name)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n := &NVRTC{Path: path}
		s := &symbols{lib: path, handle: h}
		s.fn(&n.nvrtcVersion, "nvrtcVersion")
		s.fn(&n.nvrtcGetErrorString, "nvrtcGetErrorString")
		s.fn(&n.nvrtcCreateProgram, "nvrtcCreateProgram")
		s.fn(&n.nvrtcCompileProgram, "nvrtcCompileProgram")
		s.fn(&n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize")
		s.fn(&n.nvrtcGetProgramLog, "nvrtcGetProgramLog")
		s.fn(&n.nvrtcGetCUBINSize, "nvrtcGetCUBINSize")
		s.fn(&n.nvrtcGetCUBIN, "nvrtcGetCUBIN")
		s.fn(&n.nvrtcDestroyProgram, "nvrtcDestroyProgram")
		if err := s.err(); err != nil {
			return nil, err
		}
		var maj, min int32
		if err := n.check("nvrtcVersion", n.nvrtcVersion(&maj, &min)); err != nil {
			return nil, err
		}
		n.Major, n.Minor = int(maj), int(min)
		return n, nil
	}
	return nil, firstErr
}

func (n *NVRTC) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	msg := n.nvrtcGetErrorString(code)
	return &Error{Call: call, Code: int(code), Name: msg}
}

// Compile compiles CUDA C source to a cubin with the given options (for
// example "--gpu-architecture=sm_90"). On a compile error the returned error
// holds the compiler's log.
func (n *NVRTC) Compile(src, name string, opts []string) ([]byte, error) {
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", n.nvrtcCreateProgram(&prog, src, name, 0, nil, nil)); err != nil {
		return nil, err
	}
	defer n.nvrtcDestroyProgram(&prog)
	cstr := make([][]byte, len(opts))
	ptrs := make([]uintptr, len(opts)+1)
	for i, o := range opts {
		cstr[i] = append([]byte(o), 0)
		ptrs[i] = uintptr(unsafe.Pointer(&cstr[i][0]))
	}
	code := n.nvrtcCompileProgram(prog, int32(len(opts)), &ptrs[0])
	runtime.KeepAlive(cstr)
	if err := n.check("nvrtcCompileProgram", code); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, n.log(prog))
	}
	var size uint64
	if err := n.check("nvrtcGetCUBINSize", n.nvrtcGetCUBINSize(prog, &size)); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("nvrtcGetCUBINSize: empty cubin (was a virtual architecture given?)")
	}
	out := make([]byte, size)
	if err := n.check("nvrtcGetCUBIN", n.nvrtcGetCUBIN(prog, &out[0])); err != nil {
		return nil, err
	}
	return out, nil
}

func (n *NVRTC) log(prog uintptr) string {
	var size uint64
	if n.nvrtcGetProgramLogSize(prog, &size) != 0 || size <= 1 {
		return ""
	}
	buf := make([]byte, size)
	if n.nvrtcGetProgramLog(prog, &buf[0]) != 0 {
		return ""
	}
	return cString(&buf[0])
}
