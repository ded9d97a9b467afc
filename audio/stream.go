package audio

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/goose-rwkv/goose/audio/resample"
)

// Stream tags audio as it arrives (a live recording, or a file read block
// by block): Write appends PCM and returns the windows it completed;
// Flush ends the stream and returns the windows that cover its end. It
// keeps only the samples of windows not yet tagged, so a stream of any
// length takes constant memory. A Stream is used by one goroutine.
type Stream struct {
	t     *Tagger
	opts  TagOptions
	rs    *resample.Resampler
	rate  int // model rate
	hop   int // samples
	clip  int // samples
	batch int

	buf   []float32 // model-rate samples from absolute index base on
	base  int64
	total int64 // model-rate samples received
	next  int64 // index of the next window to tag
	done  bool
	err   error // sticky: a bad rate or option, or a failed batch
	tmp   []float32
}

// NewStream starts tagging live audio at the given rate (resampled to the
// model's). An invalid rate or option is reported by the first Write.
func (t *Tagger) NewStream(rate int, opts TagOptions) *Stream {
	s, err := t.newStream(rate, opts)
	if err != nil {
		return &Stream{t: t, done: true, err: err}
	}
	return s
}

func (t *Tagger) newStream(rate int, opts TagOptions) (*Stream, error) {
	hop, err := t.hopSamples(opts)
	if err != nil {
		return nil, err
	}
	rs, err := resample.New(rate, t.cfg.SampleRate)
	if err != nil {
		return nil, err
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = t.batch
	}
	return &Stream{t: t, opts: opts, rs: rs, rate: t.cfg.SampleRate, hop: hop, clip: t.clipSamples(), batch: batch}, nil
}

// errFlushed is returned by Write after Flush.
var errFlushed = errors.New("audio: stream already flushed")

// Write appends PCM (at the stream's rate, in [-1, 1]) and returns the
// windows it completed, in order. ctx is checked between model batches.
func (s *Stream) Write(ctx context.Context, pcm []float32) ([]Window, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.done {
		return nil, errFlushed
	}
	s.tmp = s.rs.Write(s.tmp[:0], pcm)
	s.buf = append(s.buf, s.tmp...)
	s.total += int64(len(s.tmp))
	return s.emit(ctx, false)
}

// Flush ends the stream and returns the windows that remain: those needed
// to cover the end of the audio (the last may be shorter than the clip;
// it is padded as the reference pads short clips). A stream that received
// no audio has no windows.
func (s *Stream) Flush(ctx context.Context) ([]Window, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.done {
		return nil, errFlushed
	}
	s.tmp = s.rs.Flush(s.tmp[:0])
	s.buf = append(s.buf, s.tmp...)
	s.total += int64(len(s.tmp))
	s.done = true
	return s.emit(ctx, true)
}

// Duration is the length of the audio written so far.
func (s *Stream) Duration() time.Duration { return s.at(s.total) }

func (s *Stream) at(sample int64) time.Duration {
	return time.Duration(sample) * time.Second / time.Duration(s.rate)
}

// last returns the index of the last window the stream needs once it has
// ended: the first whose end reaches the end of the audio (-1 for none).
func (s *Stream) last() int64 {
	if s.total == 0 {
		return -1
	}
	over := s.total - int64(s.clip)
	if over <= 0 {
		return 0
	}
	return (over + int64(s.hop) - 1) / int64(s.hop)
}

// emit tags the windows that are complete (or, at the end, all that
// remain) in batches.
func (s *Stream) emit(ctx context.Context, end bool) ([]Window, error) {
	var out []Window
	for {
		var clips [][]float32
		var starts []int64
		for len(clips) < s.batch {
			k := s.next + int64(len(clips))
			start := k * int64(s.hop)
			stop := start + int64(s.clip)
			if end {
				if k > s.last() {
					break
				}
				stop = min(stop, s.total)
			} else if stop > s.total {
				break
			}
			clips = append(clips, s.buf[start-s.base:stop-s.base])
			starts = append(starts, start)
		}
		if len(clips) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		probs, err := s.t.probs(ctx, clips)
		if err != nil {
			s.err = err
			return out, err
		}
		for i, p := range probs {
			stop := starts[i] + int64(len(clips[i]))
			out = append(out, Window{Start: s.at(starts[i]), End: s.at(stop), Probs: p})
		}
		s.next += int64(len(clips))
		// Drop samples no later window reads.
		if drop := s.next*int64(s.hop) - s.base; drop > 0 {
			drop = min(drop, int64(len(s.buf)))
			n := copy(s.buf, s.buf[drop:])
			s.buf = s.buf[:n]
			s.base += drop
		}
	}
	return out, nil
}

// result assembles a Result from a stream's windows.
func (s *Stream) result(ws []Window) *Result {
	n := s.opts.Top
	if n == 0 {
		n = 10
	}
	r := &Result{Duration: s.Duration(), Windows: ws}
	if p := peak(ws); p != nil {
		r.Top = top(p, n, s.opts.Threshold)
	}
	return r
}

// SampleReader is a source of mono PCM samples; *wav.Reader is one.
// Read returns io.EOF at the end.
type SampleReader interface {
	Read(dst []float32) (int, error)
}

// TagReader tags everything r delivers (at the given rate) block by block
// through a Stream, so a recording of any length takes constant memory.
func (t *Tagger) TagReader(ctx context.Context, r SampleReader, rate int, opts TagOptions) (*Result, error) {
	s, err := t.newStream(rate, opts)
	if err != nil {
		return nil, err
	}
	// Read one batch of hops at a time, so windows complete in batches.
	buf := make([]float32, max(1024, int(float64(s.hop*s.batch)*float64(rate)/float64(s.rate))))
	var ws []Window
	for {
		n, rerr := r.Read(buf)
		w, err := s.Write(ctx, buf[:n])
		if err != nil {
			return nil, err
		}
		ws = append(ws, w...)
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	w, err := s.Flush(ctx)
	if err != nil {
		return nil, err
	}
	return s.result(append(ws, w...)), nil
}
