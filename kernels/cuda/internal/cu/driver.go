package cu

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Driver holds the entry points of libcuda.so.1, the CUDA driver API.
type Driver struct {
	Path string // the library file that was opened

	cuInit                      func(flags uint32) int32
	cuDriverGetVersion          func(v *int32) int32
	cuDeviceGetCount            func(n *int32) int32
	cuDeviceGet                 func(dev *int32, ordinal int32) int32
	cuDeviceGetName             func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute        func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem            func(b *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain    func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease   func(dev int32) int32
	cuMemGetInfo                func(free, total *uint64) int32
	cuMemAlloc                  func(p *uint64, n uint64) int32
	cuMemFree                   func(p uint64) int32
	cuMemAllocHost              func(p **byte, n uint64) int32
	cuMemFreeHost               func(p *byte) int32
	cuMemHostRegister           func(p *byte, n uint64, flags uint32) int32
	cuMemHostUnregister         func(p *byte) int32
	cuModuleLoadData            func(m *uintptr, image *byte) int32
	cuModuleGetFunction         func(f *uintptr, m uintptr, name string) int32
	cuModuleUnload              func(m uintptr) int32
	cuFuncSetAttribute          func(f uintptr, attr int32, v int32) int32
	cuStreamCreate              func(s *uintptr, flags uint32) int32
	cuStreamDestroy             func(s uintptr) int32
	cuStreamBeginCapture        func(s uintptr, mode int32) int32
	cuStreamEndCapture          func(s uintptr, g *uintptr) int32
	cuGraphInstantiateWithFlags func(e *uintptr, g uintptr, flags uint64) int32
	cuGraphExecDestroy          func(e uintptr) int32
	cuGraphDestroy              func(g uintptr) int32
	cuGetErrorName              func(code int32, s **byte) int32
	cuGetErrorString            func(code int32, s **byte) int32
	cuCtxSetCurrentP            uintptr
	cuLaunchKernelP             uintptr
	cuMemcpyHtoDAsyncP          uintptr
	cuMemcpyDtoHAsyncP          uintptr
	cuMemcpyDtoDAsyncP          uintptr
	cuMemsetD8AsyncP            uintptr
	cuStreamSynchronizeP        uintptr
	cuGraphLaunchP              uintptr
	cuMemcpyHtoDP               uintptr
	cuLaunchKernelExP           uintptr
	cuEventCreate               func(e *uintptr, flags uint32) int32
	cuEventDestroy              func(e uintptr) int32
	cuEventElapsedTime          func(ms *float32, start, end uintptr) int32
	cuEventRecordP              uintptr
	cuEventSynchronizeP         uintptr
	cuStreamWaitEventP          uintptr
}

// LoadDriver opens libcuda.so.1 and calls cuInit.
func LoadDriver() (*Driver, error) {
	h, path, err := open("libcuda.so.1", "libcuda.so")
	if err != nil {
		return nil, err
	}
	d := &Driver{Path: path}
	s := &symbols{lib: path, handle: h}
	s.fn(&d.cuInit, "cuInit")
	s.fn(&d.cuDriverGetVersion, "cuDriverGetVersion")
	s.fn(&d.cuDeviceGetCount, "cuDeviceGetCount")
	s.fn(&d.cuDeviceGet, "cuDeviceGet")
	s.fn(&d.cuDeviceGetName, "cuDeviceGetName")
	s.fn(&d.cuDeviceGetAttribute, "cuDeviceGetAttribute")
	s.fn(&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
	s.fn(&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	s.fn(&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	s.fn(&d.cuMemGetInfo, "cuMemGetInfo_v2")
	s.fn(&d.cuMemAlloc, "cuMemAlloc_v2")
	s.fn(&d.cuMemFree, "cuMemFree_v2")
	s.fn(&d.cuMemAllocHost, "cuMemAllocHost_v2")
	s.fn(&d.cuMemFreeHost, "cuMemFreeHost")
	s.fn(&d.cuMemHostRegister, "cuMemHostRegister_v2")
	s.fn(&d.cuMemHostUnregister, "cuMemHostUnregister")
	s.fn(&d.cuModuleLoadData, "cuModuleLoadData")
	s.fn(&d.cuModuleGetFunction, "cuModuleGetFunction")
	s.fn(&d.cuModuleUnload, "cuModuleUnload")
	s.fn(&d.cuFuncSetAttribute, "cuFuncSetAttribute")
	s.fn(&d.cuStreamCreate, "cuStreamCreate")
	s.fn(&d.cuStreamDestroy, "cuStreamDestroy_v2")
	s.fn(&d.cuStreamBeginCapture, "cuStreamBeginCapture_v2")
	s.fn(&d.cuStreamEndCapture, "cuStreamEndCapture")
	s.fn(&d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")
	s.fn(&d.cuGraphExecDestroy, "cuGraphExecDestroy")
	s.fn(&d.cuGraphDestroy, "cuGraphDestroy")
	s.fn(&d.cuGetErrorName, "cuGetErrorName")
	s.fn(&d.cuGetErrorString, "cuGetErrorString")
	d.cuCtxSetCurrentP = s.addr("cuCtxSetCurrent")
	d.cuLaunchKernelP = s.addr("cuLaunchKernel")
	d.cuMemcpyHtoDAsyncP = s.addr("cuMemcpyHtoDAsync_v2")
	d.cuMemcpyDtoHAsyncP = s.addr("cuMemcpyDtoHAsync_v2")
	d.cuMemcpyDtoDAsyncP = s.addr("cuMemcpyDtoDAsync_v2")
	d.cuMemsetD8AsyncP = s.addr("cuMemsetD8Async")
	d.cuStreamSynchronizeP = s.addr("cuStreamSynchronize")
	d.cuGraphLaunchP = s.addr("cuGraphLaunch")
	d.cuMemcpyHtoDP = s.addr("cuMemcpyHtoD_v2")
	d.cuEventRecordP = s.addr("cuEventRecord")
	d.cuEventSynchronizeP = s.addr("cuEventSynchronize")
	d.cuStreamWaitEventP = s.addr("cuStreamWaitEvent")
	s.fn(&d.cuEventCreate, "cuEventCreate")
	s.fn(&d.cuEventDestroy, "cuEventDestroy_v2")
	s.fn(&d.cuEventElapsedTime, "cuEventElapsedTime")
	if err := s.err(); err != nil {
		return nil, err
	}
	// cuLaunchKernelEx (CUDA 12.0+) is optional: without it kernels launch
	// without programmatic dependent launch.
	if p, err := purego.Dlsym(h, "cuLaunchKernelEx"); err == nil {
		d.cuLaunchKernelExP = p
	}
	if err := d.check("cuInit", d.cuInit(0)); err != nil {
		return nil, err
	}
	return d, nil
}

func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// check turns a CUresult into an error naming the call.
func (d *Driver) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	var name, msg *byte
	d.cuGetErrorName(code, &name)
	d.cuGetErrorString(code, &msg)
	e := &Error{Call: call, Code: int(code), Name: cString(name), Msg: cString(msg)}
	if e.Name == "" {
		e.Name = fmt.Sprintf("CUresult(%d)", code)
	}
	return e
}

// Version returns the driver's CUDA version, e.g. 13000 for 13.0.
func (d *Driver) Version() (int, error) {
	var v int32
	err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v))
	return int(v), err
}

// DeviceCount returns the number of CUDA devices.
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n))
	return int(n), err
}

// Device returns the handle of device ordinal i.
func (d *Driver) Device(i int) (int32, error) {
	var dev int32
	err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, int32(i)))
	return dev, err
}

// DeviceName returns the device's marketing name.
func (d *Driver) DeviceName(dev int32) (string, error) {
	buf := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&buf[0], int32(len(buf)), dev)); err != nil {
		return "", err
	}
	return cString(&buf[0]), nil
}

// Device attributes (CUdevice_attribute).
const (
	AttrMaxThreadsPerBlock   = 1
	AttrMaxSharedPerBlock    = 8
	AttrMultiprocessorCount  = 16
	AttrComputeCapabilityMaj = 75
	AttrComputeCapabilityMin = 76
	AttrL2CacheSize          = 38
	AttrMaxSharedOptin       = 97 // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
)

// Attribute reads a device attribute.
func (d *Driver) Attribute(dev int32, attr int) (int, error) {
	var v int32
	err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, int32(attr), dev))
	return int(v), err
}

// TotalMem returns the device's memory in bytes.
func (d *Driver) TotalMem(dev int32) (int64, error) {
	var n uint64
	err := d.check("cuDeviceTotalMem_v2", d.cuDeviceTotalMem(&n, dev))
	return int64(n), err
}

// RetainPrimaryContext returns the device's primary context.
func (d *Driver) RetainPrimaryContext(dev int32) (uintptr, error) {
	var ctx uintptr
	err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&ctx, dev))
	return ctx, err
}

// ReleasePrimaryContext releases what RetainPrimaryContext took.
func (d *Driver) ReleasePrimaryContext(dev int32) error {
	return d.check("cuDevicePrimaryCtxRelease_v2", d.cuDevicePrimaryCtxRelease(dev))
}

// SetCurrent binds ctx to the calling OS thread.
func (d *Driver) SetCurrent(ctx uintptr) error {
	return d.check("cuCtxSetCurrent", call(d.cuCtxSetCurrentP, ctx))
}

// MemInfo returns free and total device memory of the current context.
func (d *Driver) MemInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.check("cuMemGetInfo_v2", d.cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// MemAlloc allocates n bytes of device memory.
func (d *Driver) MemAlloc(n int64) (uint64, error) {
	var p uint64
	err := d.check("cuMemAlloc_v2", d.cuMemAlloc(&p, uint64(n)))
	return p, err
}

// MemFree frees device memory.
func (d *Driver) MemFree(p uint64) error {
	return d.check("cuMemFree_v2", d.cuMemFree(p))
}

// MemAllocHost allocates n bytes of page-locked host memory.
func (d *Driver) MemAllocHost(n int64) ([]byte, error) {
	var p *byte
	if err := d.check("cuMemAllocHost_v2", d.cuMemAllocHost(&p, uint64(n))); err != nil {
		return nil, err
	}
	return unsafe.Slice(p, n), nil
}

// MemFreeHost frees memory from MemAllocHost.
func (d *Driver) MemFreeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemFreeHost", d.cuMemFreeHost(&b[0]))
}

// MemHostRegister page-locks b (which must stay where it is, e.g. a
// runtime.Pinner-pinned Go object, until MemHostUnregister) so that
// device copies to and from it run by DMA without staging.
func (d *Driver) MemHostRegister(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemHostRegister_v2", d.cuMemHostRegister(&b[0], uint64(len(b)), 0))
}

// MemHostUnregister undoes MemHostRegister.
func (d *Driver) MemHostUnregister(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemHostUnregister", d.cuMemHostUnregister(&b[0]))
}

// MemcpyHtoD copies src to device address dst, synchronously.
func (d *Driver) MemcpyHtoD(dst uint64, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return d.check("cuMemcpyHtoD_v2", call(d.cuMemcpyHtoDP, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src))))
}

// MemcpyHtoDAsync queues a copy of src to device address dst on stream.
// For pageable src the driver stages the data before returning.
func (d *Driver) MemcpyHtoDAsync(dst uint64, src []byte, stream uintptr) error {
	if len(src) == 0 {
		return nil
	}
	return d.check("cuMemcpyHtoDAsync_v2", call(d.cuMemcpyHtoDAsyncP, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)), stream))
}

// MemcpyDtoHAsync queues a copy of device memory into dst on stream.
func (d *Driver) MemcpyDtoHAsync(dst []byte, src uint64, stream uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	return d.check("cuMemcpyDtoHAsync_v2", call(d.cuMemcpyDtoHAsyncP, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(len(dst)), stream))
}

// MemcpyDtoDAsync queues a device-to-device copy of n bytes.
func (d *Driver) MemcpyDtoDAsync(dst, src uint64, n int64, stream uintptr) error {
	return d.check("cuMemcpyDtoDAsync_v2", call(d.cuMemcpyDtoDAsyncP, uintptr(dst), uintptr(src), uintptr(n), stream))
}

// MemsetD8Async queues setting n bytes at dst to v.
func (d *Driver) MemsetD8Async(dst uint64, v byte, n int64, stream uintptr) error {
	return d.check("cuMemsetD8Async", call(d.cuMemsetD8AsyncP, uintptr(dst), uintptr(v), uintptr(n), stream))
}

// ModuleLoadData loads a cubin or PTX image.
func (d *Driver) ModuleLoadData(image []byte) (uintptr, error) {
	var m uintptr
	buf := append(append([]byte(nil), image...), 0) // PTX must be NUL-terminated
	err := d.check("cuModuleLoadData", d.cuModuleLoadData(&m, &buf[0]))
	return m, err
}

// ModuleFunction looks up a kernel by its (extern "C") name.
func (d *Driver) ModuleFunction(m uintptr, name string) (uintptr, error) {
	var f uintptr
	if err := d.check("cuModuleGetFunction", d.cuModuleGetFunction(&f, m, name)); err != nil {
		return 0, fmt.Errorf("kernel %s: %w", name, err)
	}
	return f, nil
}

// FuncAttrMaxDynamicShared is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
const FuncAttrMaxDynamicShared = 8

// FuncSetAttribute sets an attribute of kernel f.
func (d *Driver) FuncSetAttribute(f uintptr, attr, v int) error {
	return d.check("cuFuncSetAttribute", d.cuFuncSetAttribute(f, int32(attr), int32(v)))
}

// ModuleUnload unloads a module.
func (d *Driver) ModuleUnload(m uintptr) error {
	return d.check("cuModuleUnload", d.cuModuleUnload(m))
}

// StreamCreate creates a stream (flags 0: blocking, 1: non-blocking).
func (d *Driver) StreamCreate(flags uint32) (uintptr, error) {
	var s uintptr
	err := d.check("cuStreamCreate", d.cuStreamCreate(&s, flags))
	return s, err
}

// StreamDestroy destroys a stream.
func (d *Driver) StreamDestroy(s uintptr) error {
	return d.check("cuStreamDestroy_v2", d.cuStreamDestroy(s))
}

// StreamSynchronize waits for all work queued on s.
func (d *Driver) StreamSynchronize(s uintptr) error {
	return d.check("cuStreamSynchronize", call(d.cuStreamSynchronizeP, s))
}

// Stream capture modes.
const (
	CaptureGlobal      = 0
	CaptureThreadLocal = 1
	CaptureRelaxed     = 2
)

// BeginCapture starts recording the work queued on s into a graph.
func (d *Driver) BeginCapture(s uintptr, mode int) error {
	return d.check("cuStreamBeginCapture_v2", d.cuStreamBeginCapture(s, int32(mode)))
}

// EndCapture stops recording and returns the graph.
func (d *Driver) EndCapture(s uintptr) (uintptr, error) {
	var g uintptr
	err := d.check("cuStreamEndCapture", d.cuStreamEndCapture(s, &g))
	return g, err
}

// GraphInstantiate makes an executable graph.
func (d *Driver) GraphInstantiate(g uintptr) (uintptr, error) {
	var e uintptr
	err := d.check("cuGraphInstantiateWithFlags", d.cuGraphInstantiateWithFlags(&e, g, 0))
	return e, err
}

// GraphLaunch queues an executable graph on s.
func (d *Driver) GraphLaunch(e, s uintptr) error {
	return d.check("cuGraphLaunch", call(d.cuGraphLaunchP, e, s))
}

// GraphExecDestroy frees an executable graph.
func (d *Driver) GraphExecDestroy(e uintptr) error {
	return d.check("cuGraphExecDestroy", d.cuGraphExecDestroy(e))
}

// GraphDestroy frees a graph.
func (d *Driver) GraphDestroy(g uintptr) error {
	return d.check("cuGraphDestroy", d.cuGraphDestroy(g))
}

// Launch queues kernel f. params points at an array of pointers, one per
// kernel parameter, each pointing at the parameter's value; the driver
// copies the values before Launch returns.
func (d *Driver) Launch(f uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params unsafe.Pointer) error {
	return d.check("cuLaunchKernel", call(d.cuLaunchKernelP, f,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]),
		uintptr(shared), stream, uintptr(params), 0))
}

// HasLaunchEx reports whether the driver has cuLaunchKernelEx, needed for
// programmatic dependent launch.
func (d *Driver) HasLaunchEx() bool { return d.cuLaunchKernelExP != 0 }

// launchAttr mirrors CUlaunchAttribute: an id and a 64-byte value union.
type launchAttr struct {
	id    uint32
	_     uint32
	value [8]uint64
}

// launchConfig mirrors CUlaunchConfig.
type launchConfig struct {
	grid     [3]uint32
	block    [3]uint32
	shared   uint32
	stream   uintptr
	attrs    *launchAttr
	numAttrs uint32
}

// attrProgrammaticStreamSerialization is
// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
const attrProgrammaticStreamSerialization = 6

// LaunchPDL queues kernel f like Launch, allowing it to start before the
// previous kernel in the stream has finished (programmatic dependent
// launch): f must execute griddepcontrol.wait before it reads what earlier
// work wrote or writes what earlier work reads. Without cuLaunchKernelEx it
// is Launch.
func (d *Driver) LaunchPDL(f uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params unsafe.Pointer) error {
	if d.cuLaunchKernelExP == 0 {
		return d.Launch(f, grid, block, shared, stream, params)
	}
	attr := launchAttr{id: attrProgrammaticStreamSerialization}
	attr.value[0] = 1
	cfg := launchConfig{grid: grid, block: block, shared: shared, stream: stream, attrs: &attr, numAttrs: 1}
	return d.check("cuLaunchKernelEx", call(d.cuLaunchKernelExP, uintptr(unsafe.Pointer(&cfg)), f, uintptr(params), 0))
}

// EventDisableTiming is CU_EVENT_DISABLE_TIMING: an event only for
// ordering, cheaper to record and wait for.
const EventDisableTiming = 2

// EventCreateFlags makes an event with the given CU_EVENT_* flags.
func (d *Driver) EventCreateFlags(flags uint32) (uintptr, error) {
	var e uintptr
	err := d.check("cuEventCreate", d.cuEventCreate(&e, flags))
	return e, err
}

// StreamWaitEvent makes the work queued on s after the call wait until e
// (as last recorded before the call) has been reached.
func (d *Driver) StreamWaitEvent(s, e uintptr) error {
	return d.check("cuStreamWaitEvent", call(d.cuStreamWaitEventP, s, e, 0))
}

// EventCreate makes an event (flags 0: with timing).
func (d *Driver) EventCreate() (uintptr, error) {
	var e uintptr
	err := d.check("cuEventCreate", d.cuEventCreate(&e, 0))
	return e, err
}

// EventDestroy frees an event.
func (d *Driver) EventDestroy(e uintptr) error {
	return d.check("cuEventDestroy_v2", d.cuEventDestroy(e))
}

// EventRecord queues the recording of e on stream s.
func (d *Driver) EventRecord(e, s uintptr) error {
	return d.check("cuEventRecord", call(d.cuEventRecordP, e, s))
}

// EventSynchronize waits until e has been reached.
func (d *Driver) EventSynchronize(e uintptr) error {
	return d.check("cuEventSynchronize", call(d.cuEventSynchronizeP, e))
}

// EventElapsed returns the time between two recorded events in seconds.
func (d *Driver) EventElapsed(start, end uintptr) (float64, error) {
	var ms float32
	err := d.check("cuEventElapsedTime", d.cuEventElapsedTime(&ms, start, end))
	return float64(ms) / 1e3, err
}
