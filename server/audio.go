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
	// The recording may take long to arrive as a whole, but it must keep
	// coming: each read must progress within BodyTimeout.
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{})
	body := http.MaxBytesReader(w, &idleReader{r: r.Body, rc: rc, d: s.opts.BodyTimeout}, s.opts.MaxAudioBytes)
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")) // checked by audioBody
	var src io.Reader = body
	if ct == "multipart/form-data" {
		var err error
		if src, err = audioPart(multipart.NewReader(body, params["boundary"]), &opts); err != nil {
			return writeError(w, err)
		}
	}
	if opts.hop > clip {
		return writeError(w, invalid("hop", "invalid_hop", "hop %v: at most the clip length %v", opts.hop, clip))
	}
	rd, err := wav.NewReader(src)
	if err != nil {
		w.Header().Set("Connection", "close")
		return writeError(w, s.badAudio(err))
	}
	res, err := t.TagReader(r.Context(), rd, rd.Format().Rate, audio.TagOptions{Hop: opts.hop, Top: opts.top, Threshold: opts.threshold})
	switch {
	case r.Context().Err() != nil && !isTimeout(err):
		return statusClientClosed
	case errors.Is(err, audio.ErrClosed):
		return writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: strPtr("server_busy"), Message: "the server is shutting down"})
	case err != nil:
		w.Header().Set("Connection", "close") // the rest of the body is not read
		return writeError(w, s.badAudio(err))
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

// audioBody checks that a tags request declares a WAV body (audio/wav and
// its aliases, or application/octet-stream) or a multipart/form-data
// upload. Text and form encodings, which a web page can send without a
// CORS preflight, and bodies of no declared type are refused, as the JSON
// endpoints refuse anything but application/json.
func audioBody(r *http.Request) *apiError {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream":
			return nil
		case "multipart/form-data":
			if params["boundary"] != "" {
				return nil
			}
		}
	}
	return &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalidRequest, Code: strPtr("unsupported_media_type"),
		Message: fmt.Sprintf("Content-Type %q: send a WAV file as Content-Type: audio/wav, or as the \"file\" field of a multipart/form-data upload", ct)}
}

// badAudio is a 400 that says what is wrong with the audio (a 413 for a
// body over the limit, a 408 for one that stopped arriving).
func (s *Server) badAudio(err error) *apiError {
	if ae := bodyError(err, fmt.Sprintf("the recording exceeds %d bytes", s.opts.MaxAudioBytes),
		fmt.Sprintf("the recording stopped arriving for %v", s.opts.BodyTimeout)); ae != nil {
		return ae
	}
	return invalid("file", "invalid_audio", "the audio cannot be tagged: %v", err)
}

// idleReader sets a read deadline d ahead before each read, so that a
// body may take any time as long as it keeps arriving.
type idleReader struct {
	r  io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(i.d))
	return i.r.Read(p)
}

func (i *idleReader) Close() error { return i.r.Close() }
