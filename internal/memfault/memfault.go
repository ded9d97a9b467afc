// Package memfault turns memory faults into errors.
//
// Weights are read in place from memory-mapped files. If such a file is
// truncated while mapped (say, `cp new.safetensors live.safetensors` while
// a server runs), reading a page past its new end raises SIGBUS, which
// kills a Go program. debug.SetPanicOnFault makes the fault a panic on the
// goroutine that touched the page instead; Catch recovers that panic as an
// *Error, so the operation fails and the process lives.
//
// SetPanicOnFault is per goroutine: Catch covers the calling goroutine, and
// worker goroutines that read mapped memory on its behalf (the CPU
// backend's pool) set it themselves, recover faults with Recovered, and
// re-raise them on the caller with Repanic.
package memfault

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Error reports a memory fault: a read of mapped memory that the file no
// longer backs.
type Error struct {
	Addr uintptr // the faulting address
}

func (e *Error) Error() string {
	return fmt.Sprintf("memory fault at address %#x: a memory-mapped file was truncated or changed while in use", e.Addr)
}

// addrError is what the runtime panics with on a fault when
// SetPanicOnFault is on (a runtime.Error with the faulting address).
type addrError interface {
	error
	RuntimeError()
	Addr() uintptr
}

// Catch makes memory faults on the calling goroutine panics, and returns a
// function that restores the previous setting and, if the goroutine is
// panicking with a fault, recovers it and stores it in *err as an *Error.
// Other panics continue. Use it as
//
//	defer memfault.Catch(&err)()
//
// at the top of a function with a named error result.
func Catch(err *error) func() { return catch("", err) }

// CatchFile is Catch for a function that reads the weights mapped from the
// file at path: a fault, caught here or returned in *err by worker
// goroutines (Repanic), is reported as "read weights from PATH: …; reload
// the model", still an *Error to errors.As.
//
//	defer memfault.CatchFile(path, &err)()
func CatchFile(path string, err *error) func() {
	if path == "" {
		path = "(weights)"
	}
	return catch(path, err)
}

// catch returns the deferred function of Catch and CatchFile (it must call
// recover itself: recover works only in the deferred function).
func catch(path string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			e, ok := asFault(r)
			if !ok {
				panic(r)
			}
			*err = e
		}
		var fe *Error
		if path != "" && *err != nil && errors.As(*err, &fe) {
			*err = fmt.Errorf("read weights from %s: %w; reload the model", path, *err)
		}
	}
}

// Recovered converts a value from recover() into an *Error when it is a
// memory fault; it reports false for anything else (including nil).
func Recovered(r any) (*Error, bool) {
	if r == nil {
		return nil, false
	}
	return asFault(r)
}

func asFault(r any) (*Error, bool) {
	switch v := r.(type) {
	case *Error:
		return v, true
	case addrError:
		return &Error{Addr: v.Addr()}, true
	}
	return nil, false
}

// Enable makes faults on the calling goroutine panics for the rest of its
// life. Long-lived worker goroutines call it once when they start.
func Enable() { debug.SetPanicOnFault(true) }

// Repanic re-raises a fault recovered on another goroutine (see Recovered)
// on the calling one, where a Catch further up turns it into an error.
func Repanic(e *Error) { panic(e) }
