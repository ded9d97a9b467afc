package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/audio/wav"
)

// POST /v1/audio/tags is Goose's own endpoint (OpenAI has none like it):
// the body is a WAV file — sent as is (Content-Type audio/wav,
// audio/x-wav, audio/wave or application/octet-stream) or as the "file"
// field of a multipart/form-data upload — and the answer is the
// recording's AudioSet tags and its timeline of windows, as
// `gooseapp tag --json` prints them (audio.Summary). Options come as
// query parameters or, in a multipart upload, as fields before the file:
// top (tags per list, default 5), threshold (0 to 1, default 0) and hop
// (seconds between windows, default half the clip). The WAV is read
// window by window as it arrives, so a long recording takes constant
// memory; bad audio gets a 400 whose message says what is wrong with it.

// audioOptions are a tags request's options.
type audioOptions struct {
	top       int
	threshold float32
	hop       time.Duration
}

// parseAudioOption sets one option from its text.
func (o *audioOptions) set(name, v string) error {
	switch name {
	case "top":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return invalid("top", "invalid_top", "top %q: want a whole number of tags from 1 to 1000", v)
		}
		o.top = n
	case "threshold":
		p, err := strconv.ParseFloat(v, 32)
		if err != nil || !(p >= 0 && p <= 1) {
			return invalid("threshold", "invalid_threshold", "threshold %q: want a probability from 0 to 1", v)
		}
		o.threshold = float32(p)
	case "hop":
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s > 0 && s <= 3600) {
			return invalid("hop", "invalid_hop", "hop %q: want seconds between windows, more than 0", v)
		}
		o.hop = time.Duration(s * float64(time.Second))
	}
	return nil
}

func (o *audioOptions) fromQuery(q url.Values) error {
	for _, name := range []string{"top", "threshold", "hop"} {
		if v := q.Get(name); v != "" {
			if err := o.set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) handleAudioTags(w http.ResponseWriter, r *http.Request) int {
	t := s.opts.Audio
	if t == nil {
		return writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: strPtr("no_audio_model"),
			Message: "no audio tagger is loaded: start the server with --audio-model FILE (an A-RWKV checkpoint)"})
	}
	opts := audioOptions{top: 5}
	if err := opts.fromQuery(r.URL.Query()); err != nil {
		return writeError(w, err)
	}
	clip := t.Info().Clip
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxAudioBytes)
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return writeError(w, unsupportedAudio(r.Header.Get("Content-Type")))
	}
	var src io.Reader
	switch ct {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream", "":
		src = body
	case "multipart/form-data":
		mr := multipart.NewReader(body, params["boundary"])
		if src, err = audioPart(mr, &opts); err != nil {
			return writeError(w, err)
		}
	default:
		return writeError(w, unsupportedAudio(ct))
	}
	if opts.hop > clip {
		return writeError(w, invalid("hop", "invalid_hop", "hop %v: at most the clip length %v", opts.hop, clip))
	}
	rd, err := wav.NewReader(src)
	if err != nil {
		return writeError(w, badAudio(err, s.opts.MaxAudioBytes))
	}
	res, err := t.TagReader(r.Context(), rd, rd.Format().Rate, audio.TagOptions{Hop: opts.hop, Top: opts.top, Threshold: opts.threshold})
	switch {
	case r.Context().Err() != nil:
		return statusClientClosed
	case errors.Is(err, audio.ErrClosed):
		return writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: strPtr("server_busy"), Message: "the server is shutting down"})
	case err != nil:
		return writeError(w, badAudio(err, s.opts.MaxAudioBytes))
	}
	writeJSON(w, http.StatusOK, res.Summary(t.Info().Kind, opts.top, opts.threshold))
	return http.StatusOK
}

// audioPart reads a multipart body's fields up to its "file" part, which
// it returns unread.
func audioPart(mr *multipart.Reader, opts *audioOptions) (io.Reader, error) {
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, invalid("file", "missing_file", "the multipart body has no \"file\" part holding the WAV recording")
		}
		if err != nil {
			return nil, invalid("file", "invalid_body", "cannot read the multipart body: %v", err)
		}
		switch name := p.FormName(); name {
		case "file":
			return p, nil
		case "top", "threshold", "hop":
			v, err := io.ReadAll(io.LimitReader(p, 64))
			if err != nil {
				return nil, invalid(name, "invalid_body", "cannot read the %q field: %v", name, err)
			}
			if err := opts.set(name, string(v)); err != nil {
				return nil, err
			}
		}
	}
}

func unsupportedAudio(ct string) *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalidRequest, Code: strPtr("unsupported_media_type"),
		Message: fmt.Sprintf("Content-Type %q: send a WAV file as audio/wav, or as the \"file\" field of multipart/form-data", ct)}
}

// badAudio is a 400 that says what is wrong with the audio (or a 413 for
// a body over the limit).
func badAudio(err error, limit int64) *apiError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: strPtr("request_too_large"),
			Message: fmt.Sprintf("the recording exceeds %d bytes", limit)}
	}
	return invalid("file", "invalid_audio", "the audio cannot be tagged: %v", err)
}
