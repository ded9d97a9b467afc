package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goose-rwkv/goose/audio/decode"
	"github.com/goose-rwkv/goose/audio/resample"
	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/ui/capture"
	"github.com/goose-rwkv/goose/ui/history"
)

// recordRate is the rate recordings are kept at: the tagger's (32 kHz).
const recordRate = 32000

// partSuffix marks a recording being written; one left at start is what
// a crash interrupted.
const partSuffix = ".wav.part"

// flushEvery is how often a recording is flushed to disk (the most a crash
// can lose).
const flushEvery = time.Second

// maxImport is the longest file the app imports (memory: 4 bytes a sample
// at 32 kHz, about 460 MB for an hour).
const maxImport = time.Hour

// recorder captures from an input device into a 32 kHz mono WAV file in
// the recordings folder, keeping the samples for the picture and the
// tagger.
type recorder struct {
	in       capture.Input
	source   string // the device's name
	channels int
	tmp      string // the file being written
	started  time.Time

	chunks  chan []float32 // from the audio thread
	dropped atomic.Int64   // samples dropped because the app fell behind
	done    chan struct{}  // closed when the processor has finished

	mu    sync.Mutex
	pcm   []float32 // 32 kHz mono so far
	level float32   // peak of the last chunk, 0..1
	err   error     // the first write error
	path  string    // the finished file, once done
}

// startRecorder opens the WAV file and starts capturing from device id.
// onUpdate is called (on the processing goroutine) after each chunk.
func startRecorder(sys capture.System, dir, id, source string, onUpdate func()) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recordings folder: %w", err)
	}
	now := time.Now()
	tmp := filepath.Join(dir, "rec-"+now.Format("20060102-150405.000")+partSuffix)
	w, err := wav.Create(tmp, recordRate, 1)
	if err != nil {
		return nil, err
	}
	r := &recorder{source: source, tmp: tmp, started: now, chunks: make(chan []float32, 256), done: make(chan struct{})}
	in, err := sys.Record(id, func(s []float32) {
		select {
		case r.chunks <- append([]float32(nil), s...):
		default:
			r.dropped.Add(int64(len(s)))
		}
	})
	if err != nil {
		w.Abort()
		os.Remove(tmp)
		return nil, err
	}
	r.in, r.channels = in, in.Channels()
	rs, err := resample.New(in.Rate(), recordRate)
	if err != nil {
		in.Stop()
		w.Abort()
		os.Remove(tmp)
		return nil, err
	}
	go r.process(w, rs, onUpdate)
	return r, nil
}

// process turns captured chunks into 32 kHz mono, writes them and flushes
// the file every flushEvery; when chunks is closed it finishes the file
// and renames it into place.
func (r *recorder) process(w *wav.Writer, rs *resample.Resampler, onUpdate func()) {
	defer close(r.done)
	var mono, out []float32
	lastFlush := time.Now()
	fail := func(err error) {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	for chunk := range r.chunks {
		mono = downmix(mono[:0], chunk, r.channels)
		var peak float32
		for _, v := range mono {
			peak = max(peak, v, -v)
		}
		out = rs.Write(out[:0], mono)
		if err := w.Write(out); err != nil {
			fail(err)
		}
		if time.Since(lastFlush) >= flushEvery {
			if err := w.Flush(); err != nil {
				fail(err)
			}
			lastFlush = time.Now()
		}
		r.mu.Lock()
		r.pcm = append(r.pcm, out...)
		r.level = min(peak, 1)
		r.mu.Unlock()
		if onUpdate != nil {
			onUpdate()
		}
	}
	out = rs.Flush(out[:0])
	if err := w.Write(out); err != nil {
		fail(err)
	}
	r.mu.Lock()
	r.pcm = append(r.pcm, out...)
	r.mu.Unlock()
	if err := w.Close(); err != nil {
		fail(err)
	}
	final := strings.TrimSuffix(r.tmp, partSuffix) + ".wav"
	if err := os.Rename(r.tmp, final); err != nil {
		fail(fmt.Errorf("save the recording: %w", err))
		final = r.tmp
	}
	syncDir(filepath.Dir(final))
	r.mu.Lock()
	r.path = final
	r.mu.Unlock()
}

// stop ends capturing and waits until the file is finished. Not on the
// UI goroutine (it waits for the file).
func (r *recorder) stop() (path string, pcm []float32, err error) {
	r.in.Stop() // no callbacks after this
	close(r.chunks)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.path, r.pcm, r.err
}

// entry is the history entry of the finished recording: its file path
// and its samples pcm.
func (r *recorder) entry(path string, pcm []float32) history.Recording {
	return history.Recording{
		Name:     "Recording " + r.started.Format("2006-01-02 15:04:05"),
		Path:     path,
		Created:  r.started,
		Duration: pcmDuration(pcm),
		Source:   r.source,
	}
}

// pcmDuration is the length of samples at recordRate.
func pcmDuration(pcm []float32) time.Duration {
	return time.Duration(len(pcm)) * time.Second / recordRate
}

// snapshot returns the samples so far (shared; the caller must not modify
// them), the last peak level and the first error.
func (r *recorder) snapshot() ([]float32, float32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pcm[:len(r.pcm):len(r.pcm)], r.level, r.err
}

// downmix averages interleaved frames of ch channels into dst.
func downmix(dst, src []float32, ch int) []float32 {
	if ch <= 1 {
		return append(dst, src...)
	}
	inv := 1 / float32(ch)
	for i := 0; i+ch <= len(src); i += ch {
		var s float32
		for _, v := range src[i : i+ch] {
			s += v
		}
		dst = append(dst, s*inv)
	}
	return dst
}

// syncDir makes a rename in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// recoverRecordings finishes the recordings a crash left being written in
// dir: each one with a valid header keeps every whole sample on disk,
// becomes a .wav file and is added to the history. Files without a valid
// header are left alone. It returns the recordings added.
func recoverRecordings(store *history.Store, dir string) ([]history.Recording, error) {
	parts, err := filepath.Glob(filepath.Join(dir, "*"+partSuffix))
	if err != nil || len(parts) == 0 {
		return nil, err
	}
	var added []history.Recording
	var errs []error
	for _, p := range parts {
		f, frames, err := wav.Repair(p)
		if err != nil {
			continue
		}
		final := strings.TrimSuffix(p, partSuffix) + ".wav"
		if err := os.Rename(p, final); err != nil {
			errs = append(errs, err)
			continue
		}
		st, _ := os.Stat(final)
		created := time.Now()
		if st != nil {
			created = st.ModTime()
		}
		r, err := store.AddRecording(history.Recording{
			Name:     "Recovered recording " + created.Format("2006-01-02 15:04"),
			Path:     final,
			Created:  created,
			Duration: time.Duration(frames) * time.Second / time.Duration(f.Rate),
			Source:   "recovered after the app stopped while recording",
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		added = append(added, r)
	}
	syncDir(dir)
	return added, errors.Join(errs...)
}

// importAudio converts the audio file at src (WAV, FLAC or MP3, any rate
// and channels) into a 32 kHz mono WAV file in dir, written under a
// temporary name and renamed when complete. It returns the new file, its
// samples and a description of the source format. Cancelling ctx stops
// it between chunks with ctx's error, leaving no file.
func importAudio(ctx context.Context, src, dir string) (path string, pcm []float32, format string, err error) {
	f, err := decode.Open(src)
	if err != nil {
		return "", nil, "", err
	}
	defer f.Close()
	format = f.Format()
	rs, err := resample.New(f.Rate(), recordRate)
	if err != nil {
		return "", nil, format, fmt.Errorf("%s: %w", filepath.Base(src), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, format, fmt.Errorf("recordings folder: %w", err)
	}
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	tmp := filepath.Join(dir, "import-"+time.Now().Format("20060102-150405.000")+"-"+safeFileName(base)+".tmp")
	w, err := wav.Create(tmp, recordRate, 1)
	if err != nil {
		return "", nil, format, err
	}
	defer func() {
		if err != nil {
			w.Abort()
			os.Remove(tmp)
		}
	}()
	limit := int(maxImport / time.Second * recordRate)
	chunk := make([]float32, 32768)
	var out []float32
	for {
		if err := ctx.Err(); err != nil {
			return "", nil, format, err
		}
		n, rerr := f.Read(chunk)
		out = rs.Write(out[:0], chunk[:n])
		if rerr == io.EOF {
			out = rs.Flush(out)
		}
		pcm = append(pcm, out...)
		if werr := w.Write(out); werr != nil {
			return "", nil, format, werr
		}
		if len(pcm) > limit {
			return "", nil, format, fmt.Errorf("%s is longer than %s, the longest file Goose imports", filepath.Base(src), formatDuration(maxImport))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", nil, format, fmt.Errorf("%s (%s) is damaged: %w", filepath.Base(src), format, rerr)
		}
	}
	if len(pcm) == 0 {
		return "", nil, format, fmt.Errorf("%s (%s) has no audio in it", filepath.Base(src), format)
	}
	if err := w.Close(); err != nil {
		return "", nil, format, err
	}
	path = strings.TrimSuffix(tmp, ".tmp") + ".wav"
	if err := os.Rename(tmp, path); err != nil {
		return "", nil, format, err
	}
	syncDir(dir)
	return path, pcm, format, nil
}

// readRecording reads a recording's WAV file as 32 kHz mono.
func readRecording(path string) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the recording's file %s is missing (moved or deleted?)", path)
		}
		return nil, err
	}
	defer f.Close()
	pcm, format, err := wav.ReadAll(f, int64(maxImport/time.Second*recordRate)*2)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if format.Rate != recordRate {
		return resample.Resample(pcm, format.Rate, recordRate)
	}
	return pcm, nil
}
