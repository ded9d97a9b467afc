// Package cuda is Goose's NVIDIA GPU backend. It implements kernels.Backend
// and kernels.Grapher on the CUDA driver API, with kernels compiled at run
// time by NVRTC from the CUDA C sources embedded in this package and large
// matrix products done by cuBLAS. The libraries are loaded with purego, so
// the package builds without cgo and a machine without CUDA gets a
// *kernels.UnavailableError from New instead of a failure at start-up.
//
// Weights stay on the device in their file dtype (F32, F16 or BF16);
// activations and the WKV state are F32, and every sum is accumulated in
// F32. Linear and MatMul over at most 16 tokens run in this package's own
// kernels reading the weights directly; longer inputs go to cuBLAS GemmEx:
// F32 weights as an F32 GEMM (no TF32), F16/BF16 weights by splitting the
// activations into two halves of the weight's dtype (x ≈ hi + lo to ~2⁻¹⁷)
// and adding two GEMMs with F32 accumulation, as exact as F32 activations.
//
// The backend also implements kernels.Fused (one kernel per fused op for a
// single token, launched with programmatic dependent launch on Hopper) and
// kernels.Prober. Backend.CaptureIO captures a graph whose Step method
// runs a decode step's input copy, replay and output copy in one call with
// one wait. PERF.md has the measurements behind the kernels.
//
// All CUDA calls of a Backend run on one stream, in issue order; NewQueue
// (kernels.Queuer) gives Backends on further streams of the same device,
// whose ops run side by side with the first's, each with its own cuBLAS
// handle and scratch, ordered among each other by Order. A CUDA
// context belongs to an OS thread, so every method locks its goroutine to
// its thread and makes the backend's context current for the duration of
// the call; methods are serialised by a mutex, so a Backend may be shared
// between goroutines.
package cuda

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// kernelFiles holds the CUDA C sources: kernels.cu (shared helpers and the
// language model's kernels) and one file per family of ops. They compile
// as one NVRTC program, kernels.cu first and the rest in name order.
//
//go:embed *.cu
var kernelFiles embed.FS

// kernelSource is the NVRTC program: every embedded .cu file.
var kernelSource = func() string {
	names, err := fs.Glob(kernelFiles, "*.cu")
	if err != nil {
		panic(err) // a malformed pattern: a bug
	}
	sort.SliceStable(names, func(i, j int) bool { return names[i] == "kernels.cu" && names[j] != "kernels.cu" })
	var b strings.Builder
	for _, n := range names {
		src, err := kernelFiles.ReadFile(n)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		fmt.Fprintf(&b, "// ---- %s\n", n)
		b.Write(src)
		b.WriteString("\n")
	}
	return b.String()
}()

// minMajor is the oldest compute capability supported (Ampere: bf16).
const minMajor = 8

// Options configure a CUDA backend.
type Options struct {
	// Device is the CUDA device ordinal (0 for the first GPU).
	Device int
	// CacheDir holds compiled kernels between runs. Empty means
	// os.UserCacheDir()/goose/cuda; "off" disables the cache.
	CacheDir string
}

// Backend runs kernels.Ops on an NVIDIA GPU.
//
// Its methods are safe for concurrent use: each takes the device's mutex
// for the duration of the call. A graph capture holds the mutex for its
// whole duration and hands its function a recorder: a Backend on the same
// device whose ops run without taking the mutex (the capture holds it).
type Backend struct {
	*device
	// queue is the stream this Backend issues its ops on, with the
	// resources ops on it use privately: the device's own queue, or one
	// from NewQueue.
	*queue
	// rec is set on a capture's recorder; done once that capture ended.
	rec *recorder
}

// queue is one CUDA stream and what the ops issued on it use privately,
// so that ops on different queues can run at the same time: the cuBLAS
// handle and workspace, the scratch for split activations and packed
// attention operands, and an event for Order.
type queue struct {
	stream    uintptr
	handle    uintptr // cuBLAS, bound to stream
	workspace uint64  // cuBLAS workspace
	scratch   growBuf // device scratch for partial sums and converted activations
	event     uintptr // recorded on stream by Order; 0 until first needed
}

// recorder marks a Backend handed to a capture's function.
type recorder struct {
	done bool
}

// device is the state a Backend and its capture recorders share.
type device struct {
	mu sync.Mutex

	drv    *cu.Driver
	blas   *cu.BLAS
	dev    int32
	ctx    uintptr
	module uintptr
	k      kernelSet
	info   kernels.DeviceInfo
	sms    int
	main   *queue          // the queue of the Backend New returned
	queues map[*queue]bool // every live queue, main included

	err       error // first failure of an op, reported by Sync
	closed    bool
	capturing bool
	args      argBuf
	wkvTPR    int        // threads per state row in WKV7: 4, 8 or 16 (tests and benchmarks vary it)
	wkvRows   wkvVariant // the row-split WKV7 for T > 1 (tpr 0: the wkvTPR kernel)
	pdl       bool       // launch the fused kernels with programmatic dependent launch
	fused     fusedBufs

	bufs    map[*buffer]struct{}
	retired []uint64 // outgrown scratch buffers: captured graphs may still use them
	stages  [][]byte // free page-locked staging buffers for Download
	reg     hostReg  // caller memory that graph Steps copy outputs into

	// Waits for the device happen outside the lock (waitEvent), so other
	// goroutines issue their work meanwhile: events free for them, and
	// how many waits are in flight (Close waits for them; waitDone is
	// signalled as each ends).
	events   []uintptr
	nwait    int
	waitDone *sync.Cond
}

// buffer is device memory.
type buffer struct {
	ptr   uint64
	bytes int64
	owner *device
	// scale is the offset in bytes of an I8 weight's per-row float32
	// scales (after the int8 values, 16-byte aligned); 0 otherwise.
	scale int64
}

// Bytes is the buffer's size in bytes.
func (b *buffer) Bytes() int64 { return b.bytes }

func unavailable(reason string) error {
	return &kernels.UnavailableError{Backend: "cuda", Reason: reason}
}

// loadDriver opens the driver library, turning failures into
// UnavailableErrors a user can act on.
func loadDriver() (*cu.Driver, error) {
	d, err := cu.LoadDriver()
	if err == nil {
		return d, nil
	}
	var ce *cu.Error
	switch {
	case errors.Is(err, cu.ErrNotFound):
		return nil, unavailable("no libcuda.so.1 (is the NVIDIA driver installed?)")
	case errors.As(err, &ce) && ce.Name == "CUDA_ERROR_NO_DEVICE":
		return nil, unavailable("no CUDA device")
	}
	return nil, unavailable(err.Error())
}

// Devices lists the CUDA devices of this machine.
func Devices() ([]kernels.DeviceInfo, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("cuda: devices: %w", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []kernels.DeviceInfo
	for i := range n {
		dev, err := drv.Device(i)
		if err != nil {
			return out, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		info, err := deviceInfo(drv, dev)
		if err != nil {
			return out, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		ctx, err := drv.RetainPrimaryContext(dev)
		if err == nil {
			if drv.SetCurrent(ctx) == nil {
				info.FreeMemory, _, _ = drv.MemInfo()
			}
			drv.ReleasePrimaryContext(dev)
		}
		out = append(out, info)
	}
	return out, nil
}

func deviceInfo(drv *cu.Driver, dev int32) (kernels.DeviceInfo, error) {
	var info kernels.DeviceInfo
	var err error
	if info.Name, err = drv.DeviceName(dev); err != nil {
		return info, err
	}
	if info.TotalMemory, err = drv.TotalMem(dev); err != nil {
		return info, err
	}
	maj, err := drv.Attribute(dev, cu.AttrComputeCapabilityMaj)
	if err != nil {
		return info, err
	}
	min, err := drv.Attribute(dev, cu.AttrComputeCapabilityMin)
	if err != nil {
		return info, err
	}
	info.Compute = fmt.Sprintf("sm_%d%d", maj, min)
	v, err := drv.Version()
	if err != nil {
		return info, err
	}
	info.Driver = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	return info, nil
}

// New opens device opts.Device. Without a usable GPU and CUDA libraries it
// returns a *kernels.UnavailableError saying why.
func New(opts Options) (*Backend, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return nil, unavailable(err.Error())
	}
	if n == 0 {
		return nil, unavailable("no CUDA device")
	}
	if opts.Device < 0 || opts.Device >= n {
		return nil, unavailable(fmt.Sprintf("device %d requested, %d present", opts.Device, n))
	}
	dev, err := drv.Device(opts.Device)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	info, err := deviceInfo(drv, dev)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	maj, _ := drv.Attribute(dev, cu.AttrComputeCapabilityMaj)
	min, _ := drv.Attribute(dev, cu.AttrComputeCapabilityMin)
	if maj < minMajor {
		return nil, unavailable(fmt.Sprintf("compute capability %d.%d unsupported (need %d.0 or newer)", maj, min, minMajor))
	}
	sms, err := drv.Attribute(dev, cu.AttrMultiprocessorCount)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	drvVer, err := drv.Version()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}

	q := &queue{}
	b := &Backend{device: &device{drv: drv, dev: dev, info: info, sms: sms, bufs: map[*buffer]struct{}{}, wkvTPR: defaultWKVTPR,
		wkvRows: defaultWKVRows(), main: q, queues: map[*queue]bool{q: true}}, queue: q}
	b.waitDone = sync.NewCond(&b.mu)
	// Programmatic dependent launch needs Hopper (sm_90) and
	// cuLaunchKernelEx; GOOSE_CUDA_PDL=0 turns it off (for comparisons).
	b.pdl = maj >= 9 && drv.HasLaunchEx() && os.Getenv("GOOSE_CUDA_PDL") != "0"
	// GOOSE_CUDA_REGISTER=0: graph Steps copy outputs through staging
	// instead of registering the caller's buffer (for comparisons).
	b.reg.off = os.Getenv("GOOSE_CUDA_REGISTER") == "0"
	b.args.init()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.ctx, err = drv.RetainPrimaryContext(dev); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	fail := func(err error) (*Backend, error) {
		b.closeLocked()
		return nil, err
	}
	if err := drv.SetCurrent(b.ctx); err != nil {
		return fail(fmt.Errorf("cuda: %w", err))
	}
	arch := fmt.Sprintf("sm_%d%d", maj, min)
	if b.module, err = loadModule(drv, opts.CacheDir, arch, drvVer); err != nil {
		return fail(err)
	}
	if err := b.k.load(drv, b.module); err != nil {
		return fail(fmt.Errorf("cuda: %w", err))
	}
	if b.blas, err = cu.LoadBLAS(drvVer / 1000); err != nil {
		return fail(unavailable("no cuBLAS: " + err.Error()))
	}
	if err := b.openQueue(q); err != nil {
		return fail(err)
	}
	if _, err := b.scratchFor(8 << 20); err != nil {
		return fail(fmt.Errorf("cuda: scratch: %w", err))
	}
	if err := b.allocCounters(); err != nil {
		return fail(fmt.Errorf("cuda: counters: %w", err))
	}
	return b, nil
}

// scalePtr returns the device address of an I8 weight's scales: the
// weight must be the whole buffer (not a view of some of its rows).
func (b *Backend) scalePtr(w kernels.Tensor) (uint64, error) {
	buf, ok := w.Buf.(*buffer)
	if !ok || w.DType != kernels.I8 || buf.scale == 0 || w.Offset != 0 {
		return 0, fmt.Errorf("tensor %v is not a whole i8 weight", w)
	}
	return buf.ptr + uint64(buf.scale), nil
}

// loadModule returns the kernels compiled for arch, from the cache when
// they are there, else compiled with NVRTC and cached.
func loadModule(drv *cu.Driver, cacheDir, arch string, drvVer int) (uintptr, error) {
	opts := []string{"--gpu-architecture=" + arch, "--std=c++17"}
	h := sha256.Sum256([]byte(kernelSource + "\x00" + strings.Join(opts, " ")))
	name := fmt.Sprintf("%s-%s-drv%d.cubin", hex.EncodeToString(h[:12]), arch, drvVer)
	if cacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(d, "goose", "cuda")
		}
	}
	var file string
	if cacheDir != "" && cacheDir != "off" {
		file = filepath.Join(cacheDir, name)
		if img, err := os.ReadFile(file); err == nil {
			if m, err := drv.ModuleLoadData(img); err == nil {
				return m, nil
			}
			// A stale or damaged cache entry: rebuild it below.
		}
	}
	nv, err := cu.LoadNVRTC(drvVer / 1000)
	if err != nil {
		return 0, unavailable("no NVRTC (libnvrtc, CUDA's run-time compiler): " + err.Error())
	}
	img, err := nv.Compile(kernelSource, "goose_kernels.cu", opts)
	if err != nil {
		return 0, fmt.Errorf("cuda: compile kernels for %s with NVRTC %d.%d: %w", arch, nv.Major, nv.Minor, err)
	}
	m, err := drv.ModuleLoadData(img)
	if err != nil {
		return 0, fmt.Errorf("cuda: load kernels built by NVRTC %d.%d: %w", nv.Major, nv.Minor, err)
	}
	if file != "" {
		writeCache(file, img) // best effort: a read-only cache only costs a compile
	}
	return m, nil
}

func writeCache(file string, img []byte) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(img)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), file) != nil {
		os.Remove(f.Name())
	}
}

// Name returns "cuda".
func (b *Backend) Name() string { return "cuda" }

// Capabilities: prompts in chunks of up to 4,096 tokens, long enough that
// every GEMM (the LoRA ones with 64–320 columns included) has enough tiles
// to fill the GPU. Decode steps run as graphs (Grapher, StepGrapher).
func (b *Backend) Capabilities() kernels.Capabilities {
	return kernels.Capabilities{PrefillChunk: 4096, Quant: []kernels.DType{kernels.I8}}
}

// Device describes the GPU; FreeMemory is read now.
func (b *Backend) Device() kernels.DeviceInfo {
	info := b.info
	b.locked(func() error {
		f, _, err := b.drv.MemInfo()
		if err == nil {
			info.FreeMemory = f
		}
		return nil
	})
	return info
}

// locked runs f holding the mutex on a locked OS thread with the context
// current. It does not record f's error.
func (b *Backend) locked(f func() error) error {
	if b.rec != nil {
		return b.recorded(f)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("cuda: backend closed")
	}
	if !b.queues[b.queue] {
		return errors.New("cuda: queue closed")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.drv.SetCurrent(b.ctx); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	return f()
}

// recorded runs f for a capture's recorder: the capture holds the mutex,
// the OS thread and the current context, so f runs as it is. Once the
// capture has ended the recorder refuses.
func (b *Backend) recorded(f func() error) error {
	if b.rec.done {
		return errors.New("cuda: a capture's recorder used after the capture ended")
	}
	return f()
}

// idle is locked for methods that may not run while a graph is captured.
func (b *Backend) idle(what string, f func() error) error {
	return b.locked(func() error {
		if b.capturing {
			return fmt.Errorf("cuda: %s while capturing a graph", what)
		}
		return f()
	})
}

// run executes an op, recording its first failure for Sync. After a
// failure later ops are skipped.
func (b *Backend) run(op string, f func() error) {
	var err error
	if b.rec != nil {
		if b.rec.done { // a programming error: fail the backend
			b.mu.Lock()
			defer b.mu.Unlock()
		}
		err = b.recorded(func() error {
			if b.err != nil {
				return nil
			}
			return f()
		})
	} else {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.err != nil {
			return
		}
		if b.closed || !b.queues[b.queue] {
			b.err = fmt.Errorf("cuda: %s: backend or queue closed", op)
			return
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err = b.drv.SetCurrent(b.ctx)
		if err == nil {
			err = f()
		}
	}
	if err != nil && b.err == nil {
		var se *kernels.ShapeError
		if !errors.As(err, &se) {
			err = fmt.Errorf("cuda: %s: %w", op, err)
		}
		b.err = err
	}
}

// Alloc returns a zeroed tensor.
func (b *Backend) Alloc(dtype kernels.DType, rows, cols int) (kernels.Tensor, error) {
	if rows < 0 || cols < 0 || dtype.Size() == 0 {
		return kernels.Tensor{}, fmt.Errorf("cuda: alloc %v[%d,%d]: bad shape or dtype", dtype, rows, cols)
	}
	n := int64(rows) * int64(cols) * int64(dtype.Size())
	var t kernels.Tensor
	err := b.idle("Alloc", func() error {
		buf, err := b.alloc(n)
		if err != nil {
			return fmt.Errorf("cuda: alloc %v[%d,%d]: %w", dtype, rows, cols, err)
		}
		if err := b.drv.MemsetD8Async(buf.ptr, 0, max(n, 1), b.stream); err != nil {
			b.release(buf)
			return fmt.Errorf("cuda: alloc %v[%d,%d]: %w", dtype, rows, cols, err)
		}
		t = kernels.Tensor{Buf: buf, DType: dtype, Rows: rows, Cols: cols}
		return nil
	})
	return t, err
}

func (b *Backend) alloc(n int64) (*buffer, error) {
	p, err := b.drv.MemAlloc(max(n, 1))
	if err != nil {
		return nil, err
	}
	buf := &buffer{ptr: p, bytes: n, owner: b.device}
	b.bufs[buf] = struct{}{}
	return buf, nil
}

func (b *Backend) release(buf *buffer) {
	if _, ok := b.bufs[buf]; !ok {
		return
	}
	delete(b.bufs, buf)
	b.drv.MemFree(buf.ptr)
}

// Weight copies data (little-endian elements of dtype) to the device.
func (b *Backend) Weight(dtype kernels.DType, rows, cols int, data []byte) (kernels.Tensor, error) {
	if rows < 0 || cols < 0 || dtype.Size() == 0 {
		return kernels.Tensor{}, fmt.Errorf("cuda: weight %v[%d,%d]: bad shape or dtype", dtype, rows, cols)
	}
	n := int64(rows) * int64(cols) * int64(dtype.Size())
	want, size := n, n
	if dtype == kernels.I8 {
		want = int64(kernels.I8Bytes(rows, cols))
		size = (n+15)&^15 + 4*int64(rows)
	}
	if int64(len(data)) != want {
		return kernels.Tensor{}, fmt.Errorf("cuda: weight %v[%d,%d]: %d bytes given, want %d", dtype, rows, cols, len(data), want)
	}
	var t kernels.Tensor
	err := b.idle("Weight", func() error {
		buf, err := b.alloc(size)
		if err != nil {
			return fmt.Errorf("cuda: weight %v[%d,%d]: %w", dtype, rows, cols, err)
		}
		err = b.drv.MemcpyHtoDAsync(buf.ptr, data[:n], b.stream)
		if err == nil && dtype == kernels.I8 {
			buf.scale = (n + 15) &^ 15
			err = b.drv.MemcpyHtoDAsync(buf.ptr+uint64(buf.scale), data[n:], b.stream)
		}
		if err != nil {
			b.release(buf)
			return fmt.Errorf("cuda: weight %v[%d,%d]: %w", dtype, rows, cols, err)
		}
		t = kernels.Tensor{Buf: buf, DType: dtype, Rows: rows, Cols: cols}
		return nil
	})
	return t, err
}

// devPtr returns the device address of t's first element after checking
// that t lies inside a live buffer of this backend.
func (b *Backend) devPtr(t kernels.Tensor) (uint64, error) {
	buf, ok := t.Buf.(*buffer)
	if !ok || buf.owner != b.device {
		return 0, fmt.Errorf("tensor %v is not from this CUDA backend", t)
	}
	if _, live := b.bufs[buf]; !live {
		return 0, fmt.Errorf("tensor %v was freed", t)
	}
	sz := int64(t.DType.Size())
	if t.Offset < 0 || t.Rows < 0 || t.Cols < 0 || sz == 0 || (int64(t.Offset)+int64(t.Len()))*sz > buf.bytes {
		return 0, fmt.Errorf("tensor %v (offset %d) outside its %d-byte buffer", t, t.Offset, buf.bytes)
	}
	return buf.ptr + uint64(int64(t.Offset)*sz), nil
}

// Upload copies little-endian bytes into t.
func (b *Backend) Upload(t kernels.Tensor, src []byte) error {
	return b.idle("Upload", func() error {
		p, err := b.devPtr(t)
		if err != nil {
			return fmt.Errorf("cuda: upload: %w", err)
		}
		if want := t.Len() * t.DType.Size(); len(src) != want {
			return fmt.Errorf("cuda: upload %v: %d bytes given, want %d", t, len(src), want)
		}
		if err := b.drv.MemcpyHtoDAsync(p, src, b.stream); err != nil {
			return fmt.Errorf("cuda: upload %v: %w", t, err)
		}
		return nil
	})
}

// Download waits for queued work and copies t into dst. It reports the
// first error of an earlier op, if any.
func (b *Backend) Download(dst []byte, t kernels.Tensor) error {
	var stage []byte
	var ev uintptr
	n := 0
	err := b.idle("Download", func() error {
		if b.err != nil {
			return b.err
		}
		p, err := b.devPtr(t)
		if err != nil {
			return fmt.Errorf("cuda: download: %w", err)
		}
		n = t.Len() * t.DType.Size()
		if len(dst) != n {
			return fmt.Errorf("cuda: download %v: %d bytes of room, want %d", t, len(dst), n)
		}
		if n == 0 {
			return nil
		}
		if stage, err = b.takeStage(n); err != nil {
			return fmt.Errorf("cuda: download %v: %w", t, err)
		}
		if err := b.drv.MemcpyDtoHAsync(stage[:n], p, b.stream); err != nil {
			b.stages = append(b.stages, stage)
			return fmt.Errorf("cuda: download %v: %w", t, err)
		}
		if ev, err = b.recordWait(); err != nil {
			b.stages = append(b.stages, stage)
			return err
		}
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	err = b.waitEvent(ev)
	if err == nil {
		copy(dst, stage[:n])
	}
	b.mu.Lock()
	b.stages = append(b.stages, stage)
	b.mu.Unlock()
	return err
}

// takeStage returns a free page-locked staging buffer of at least n
// bytes, allocating one (of at least 1 MiB) when none is free; the caller
// puts it back in b.stages. The caller holds the lock.
func (b *Backend) takeStage(n int) ([]byte, error) {
	for i, st := range b.stages {
		if len(st) >= n {
			b.stages = append(b.stages[:i], b.stages[i+1:]...)
			return st, nil
		}
	}
	if len(b.stages) >= maxStages { // replace the smallest (all too small)
		i := 0
		for j, st := range b.stages {
			if len(st) < len(b.stages[i]) {
				i = j
			}
		}
		if err := b.drv.MemFreeHost(b.stages[i]); err != nil {
			return nil, err
		}
		b.stages = append(b.stages[:i], b.stages[i+1:]...)
	}
	return b.drv.MemAllocHost(int64(max(n, 1<<20)))
}

// maxStages is the most page-locked staging buffers a device keeps: one
// for each Download waiting at once, up to this many.
const maxStages = 8

// recordWait records an event on b's stream after the work issued so far
// and counts a wait in flight; waitEvent waits for it. The caller holds
// the lock with the context current.
func (b *Backend) recordWait() (uintptr, error) {
	var ev uintptr
	if k := len(b.events); k > 0 {
		ev, b.events = b.events[k-1], b.events[:k-1]
	} else {
		var err error
		if ev, err = b.drv.EventCreateFlags(cu.EventDisableTiming); err != nil {
			return 0, fmt.Errorf("cuda: %w", err)
		}
	}
	if err := b.drv.EventRecord(ev, b.stream); err != nil {
		b.events = append(b.events, ev)
		return 0, fmt.Errorf("cuda: %w", err)
	}
	b.nwait++
	return ev, nil
}

// waitEvent waits for ev (from recordWait) without the lock, so that other
// goroutines issue their work while this one waits for the device, then
// returns the first failure of any op (as Sync does).
func (b *Backend) waitEvent(ev uintptr) error {
	runtime.LockOSThread()
	err := b.drv.SetCurrent(b.ctx)
	if err == nil {
		err = b.drv.EventSynchronize(ev)
	}
	runtime.UnlockOSThread()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, ev)
	b.nwait--
	b.waitDone.Broadcast()
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("cuda: %w", err)
	}
	return b.err
}

// Free releases the buffer behind t (all views of it).
func (b *Backend) Free(t kernels.Tensor) {
	buf, ok := t.Buf.(*buffer)
	if !ok || buf.owner != b.device {
		return
	}
	b.idle("Free", func() error {
		// Queued kernels, on any queue, may still read the buffer.
		b.syncQueues()
		b.release(buf)
		return nil
	})
}

// Sync waits for queued work and returns the first error any op hit.
func (b *Backend) Sync() error {
	var ev uintptr
	if err := b.idle("Sync", func() error {
		if b.err != nil {
			return b.err
		}
		var err error
		ev, err = b.recordWait()
		return err
	}); err != nil {
		return err
	}
	return b.waitEvent(ev)
}

// syncQueues waits for the work of every queue, recording a failure for
// Sync. The caller holds the lock.
func (b *Backend) syncQueues() {
	for q := range b.queues {
		if err := b.drv.StreamSynchronize(q.stream); err != nil && b.err == nil {
			b.err = fmt.Errorf("cuda: %w", err)
		}
	}
}

// Close releases everything the backend holds; on a queue from NewQueue,
// the queue only.
func (b *Backend) Close() error {
	if b.rec != nil {
		return errors.New("cuda: Close on a capture's recorder")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.nwait > 0 { // downloads and syncs waiting outside the lock
		b.waitDone.Wait()
	}
	if b.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.queue != b.main {
		if !b.queues[b.queue] {
			return nil // closed already
		}
		if err := b.drv.SetCurrent(b.ctx); err != nil {
			return fmt.Errorf("cuda: close queue: %w", err)
		}
		return b.closeQueue(b.queue)
	}
	return b.closeLocked()
}

// openQueue creates q's stream (non-blocking: no implicit ordering with
// the legacy default stream), cuBLAS handle and workspace. The caller
// holds the lock with the context current; on failure it closes q.
func (b *Backend) openQueue(q *queue) error {
	var err error
	if q.stream, err = b.drv.StreamCreate(1); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	if q.handle, err = b.blas.Create(); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	if err := b.blas.SetStream(q.handle, q.stream); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	const wsBytes = 32 << 20
	if q.workspace, err = b.drv.MemAlloc(wsBytes); err != nil {
		return fmt.Errorf("cuda: cuBLAS workspace: %w", err)
	}
	if err := b.blas.SetWorkspace(q.handle, q.workspace, wsBytes); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	return nil
}

// closeQueue waits for q's work and releases q. Its outgrown scratch
// buffers stay in the device's retired list (a graph may use them). The
// caller holds the lock with the context current.
func (b *Backend) closeQueue(q *queue) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if q.stream != 0 {
		keep(b.drv.StreamSynchronize(q.stream))
	}
	for _, p := range []uint64{q.scratch.p, q.workspace} {
		if p != 0 {
			keep(b.drv.MemFree(p))
		}
	}
	if q.handle != 0 {
		keep(b.blas.Destroy(q.handle))
	}
	if q.event != 0 {
		keep(b.drv.EventDestroy(q.event))
	}
	if q.stream != 0 {
		keep(b.drv.StreamDestroy(q.stream))
	}
	*q = queue{}
	delete(b.queues, q)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: close queue: %w", err)
	}
	return nil
}

// NewQueue returns a Backend on the same device whose ops run on a stream
// of their own, side by side with the other queues' (kernels.Queuer). It
// has its own cuBLAS handle, workspace and scratch, so its products and
// attention do not share working memory with the other queues'.
func (b *Backend) NewQueue() (kernels.Backend, error) {
	if b.rec != nil {
		return nil, errors.New("cuda: NewQueue on a capture's recorder")
	}
	q := &queue{}
	err := b.idle("NewQueue", func() error {
		if err := b.openQueue(q); err != nil {
			b.closeQueue(q)
			return err
		}
		b.queues[q] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Backend{device: b.device, queue: q}, nil
}

var _ kernels.Queuer = (*Backend)(nil)

// Order makes the ops issued on after from now on wait for those issued on
// before until now (an event recorded on before's stream, waited for on
// after's), without the host waiting (kernels.Queuer).
func (b *Backend) Order(before, after kernels.Backend) error {
	p, ok1 := before.(*Backend)
	q, ok2 := after.(*Backend)
	if !ok1 || !ok2 || p.device != b.device || q.device != b.device || p.rec != nil || q.rec != nil {
		return errors.New("cuda: order: both sides must be queues of this device")
	}
	if p.queue == q.queue {
		return nil
	}
	return b.idle("Order", func() error {
		if !b.queues[p.queue] || !b.queues[q.queue] {
			return errors.New("cuda: order: a queue was closed")
		}
		if p.event == 0 {
			e, err := b.drv.EventCreateFlags(cu.EventDisableTiming)
			if err != nil {
				return fmt.Errorf("cuda: order: %w", err)
			}
			p.event = e
		}
		if err := b.drv.EventRecord(p.event, p.stream); err != nil {
			return fmt.Errorf("cuda: order: %w", err)
		}
		if err := b.drv.StreamWaitEvent(q.stream, p.event); err != nil {
			return fmt.Errorf("cuda: order: %w", err)
		}
		return nil
	})
}

func (b *Backend) closeLocked() error {
	b.closed = true
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	keep(b.drv.SetCurrent(b.ctx))
	for q := range b.queues {
		if q.stream != 0 {
			keep(b.drv.StreamSynchronize(q.stream))
		}
	}
	for buf := range b.bufs {
		keep(b.drv.MemFree(buf.ptr))
	}
	b.bufs = nil
	for _, p := range append(b.retired, b.fused.tmp.p, b.fused.part.p, b.fused.deq.p, b.fused.count) {
		if p != 0 {
			keep(b.drv.MemFree(p))
		}
	}
	b.retired = nil
	b.fused = fusedBufs{}
	b.reg.release(b)
	for _, st := range b.stages {
		keep(b.drv.MemFreeHost(st))
	}
	b.stages = nil
	for _, ev := range b.events {
		keep(b.drv.EventDestroy(ev))
	}
	b.events = nil
	for q := range b.queues {
		// Releases the queues' scratch, workspaces, handles and streams
		// (the main queue's last: it was the first).
		if q != b.main {
			keep(b.closeQueue(q))
		}
	}
	keep(b.closeQueue(b.main))
	if b.module != 0 {
		keep(b.drv.ModuleUnload(b.module))
		b.module = 0
	}
	if b.ctx != 0 {
		keep(b.drv.ReleasePrimaryContext(b.dev))
		b.ctx = 0
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: close: %w", err)
	}
	return nil
}

// scratchFor returns at least n bytes of the queue's device scratch (see
// grow).
func (b *Backend) scratchFor(n int64) (uint64, error) { return b.grow(&b.scratch, n) }
