// Package cu binds the parts of the CUDA driver API, NVRTC and cuBLAS that
// Goose uses. It loads the shared libraries at run time with purego, so a
// program that imports it builds without cgo and runs on machines without
// CUDA (Load* then returns an error instead).
//
// Every wrapper checks the status the library returns and turns a failure
// into an *Error naming the call.
package cu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ebitengine/purego"
)

// ErrNotFound is wrapped by the errors a Load function returns when none of
// the candidate library files could be opened.
var ErrNotFound = errors.New("library not found")

// libDirs lists directories searched after the dynamic loader's own path,
// for libraries shipped with a CUDA toolkit that is not on that path.
func libDirs() []string {
	var dirs []string
	for _, env := range []string{"GOOSE_CUDA_LIB", "CUDA_HOME", "CUDA_PATH"} {
		if v := os.Getenv(env); v != "" {
			dirs = append(dirs, v, filepath.Join(v, "lib64"), filepath.Join(v, "lib"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
		"/usr/local/cuda/targets/sbsa-linux/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64")
	if m, _ := filepath.Glob("/usr/local/cuda-*/lib64"); len(m) > 0 {
		dirs = append(dirs, m...)
	}
	return dirs
}

// open tries each soname through the dynamic loader, then in each of
// libDirs. It returns the handle and the path it opened.
func open(sonames ...string) (uintptr, string, error) {
	var msgs []string
	for _, name := range sonames {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, name, nil
		}
		msgs = append(msgs, err.Error())
	}
	for _, dir := range libDirs() {
		for _, name := range sonames {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err == nil {
				return h, p, nil
			}
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 3 {
		msgs = msgs[:3]
	}
	return 0, "", fmt.Errorf("%w: %s (%s)", ErrNotFound, sonames[0], strings.Join(msgs, "; "))
}

// sym looks up a symbol; missing symbols are collected into one error.
type symbols struct {
	lib     string
	handle  uintptr
	missing []string
}

func (s *symbols) addr(name string) uintptr {
	p, err := purego.Dlsym(s.handle, name)
	if err != nil || p == 0 {
		s.missing = append(s.missing, name)
		return 0
	}
	return p
}

// fn registers a typed Go function for a cold (rarely called) symbol.
func (s *symbols) fn(fptr any, name string) {
	if s.addr(name) == 0 {
		return
	}
	purego.RegisterLibFunc(fptr, s.handle, name)
}

func (s *symbols) err() error {
	if len(s.missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s: missing symbols %s", s.lib, strings.Join(s.missing, ", "))
}

// call invokes a hot C function that returns a 32-bit status. Pointers
// converted to uintptr in its arguments stay alive until it returns.
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(fn, args...)
	return int32(r)
}

// Error is a failed library call.
type Error struct {
	Call string // the C function, e.g. "cuMemAlloc_v2"
	Code int    // its status code
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // the library's description
}

func (e *Error) Error() string {
	s := e.Call + ": " + e.Name
	if e.Msg != "" && e.Msg != e.Name {
		s += " (" + e.Msg + ")"
	}
	return s
}
