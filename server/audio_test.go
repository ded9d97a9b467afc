package server

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/audio"
)

const arwkvDir = "../testdata/arwkv"

// openTagger loads the A-RWKV fixture on the CPU.
func openTagger(t *testing.T) *audio.Tagger {
	t.Helper()
	tg, err := audio.Open(filepath.Join(arwkvDir, "mm.arwkv.pth"), audio.Options{Backend: "cpu", Config: filepath.Join(arwkvDir, "mm.arwkv.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// send posts body with a content type and decodes the JSON answer.
func send(t *testing.T, url, ctype string, body []byte) (int, map[string]any, []byte) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, b)
	}
	return resp.StatusCode, v, b
}

// TestAudioTags posts the fixture's mm.wav over loopback, as a raw body and
// as a multipart upload: the first window's tags are the fixture's top
// five; bad requests get errors that say why.
func TestAudioTags(t *testing.T) {
	_, hs := startServer(t, nil, Options{Audio: openTagger(t), MaxAudioBytes: 1 << 20})
	url := hs.URL + "/v1/audio/tags"
	wavBytes, err := os.ReadFile(filepath.Join(arwkvDir, "mm.wav"))
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Top5 []int `json:"top5"`
	}
	raw, _ := os.ReadFile(filepath.Join(arwkvDir, "mm.arwkv.json"))
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}

	code, _, b := send(t, url, "audio/wav", wavBytes)
	if code != 200 {
		t.Fatalf("raw WAV: %d %s", code, b)
	}
	var sum audio.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Windows) != 2 || len(sum.Tags) != 5 || sum.Duration < 1.39 || sum.Duration > 1.41 || !strings.HasPrefix(sum.Model, "A-RWKV") {
		t.Fatalf("summary %+v", sum)
	}
	for i, tg := range sum.Windows[0].Tags {
		if tg.Index != fx.Top5[i] {
			t.Errorf("window 0 tag %d: class %d, want %d", i, tg.Index, fx.Top5[i])
		}
	}

	// Multipart, with options as fields before the file.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("top", "3")
	fw, _ := mw.CreateFormFile("file", "mm.wav")
	fw.Write(wavBytes)
	mw.Close()
	code, _, b = send(t, url, mw.FormDataContentType(), mp.Bytes())
	if err := json.Unmarshal(b, &sum); code != 200 || err != nil || len(sum.Tags) != 3 || len(sum.Windows[1].Tags) != 3 {
		t.Fatalf("multipart: %d %s", code, b)
	}
	code, _, b = send(t, url+"?threshold=0.99&hop=1.3", "audio/wav", wavBytes)
	if err := json.Unmarshal(b, &sum); code != 200 || err != nil || len(sum.Windows) != 2 || sum.Windows[1].Start != 1.3 {
		t.Fatalf("query options: %d %s", code, b)
	}

	var noFile bytes.Buffer
	mw = multipart.NewWriter(&noFile)
	mw.WriteField("top", "3")
	mw.Close()
	truncated := wavBytes[:len(wavBytes)-1001]
	// A stream of unknown length (data size 0xFFFFFFFF) past the limit.
	endless := append(bytes.Clone(wavBytes), make([]byte, 1<<20)...)
	d := bytes.Index(endless, []byte("data"))
	copy(endless[d+4:], []byte{0xff, 0xff, 0xff, 0xff})
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		status            int
		want              string
	}{
		{"not a WAV", "", "audio/wav", []byte("hello, this is not audio at all"), 400, "not a RIFF/WAVE"},
		{"truncated", "", "audio/wav", truncated, 400, "ends early"},
		{"compressed", "", "audio/wav", patch(wavBytes, 20, 0x55, 0), 400, "not supported"},
		{"empty", "", "audio/wav", nil, 400, "RIFF header"},
		{"bad top", "?top=-1", "audio/wav", wavBytes, 400, "top \"-1\""},
		{"bad threshold", "?threshold=2", "audio/wav", wavBytes, 400, "threshold \"2\""},
		{"long hop", "?hop=60", "audio/wav", wavBytes, 400, "at most the clip length"},
		{"text", "", "text/plain", wavBytes, 415, "Content-Type \"text/plain\""},
		{"form", "", "application/x-www-form-urlencoded", wavBytes, 415, "Content-Type: audio/wav"},
		{"no type", "", "", wavBytes, 415, "Content-Type \"\""},
		{"no boundary", "", "multipart/form-data", wavBytes, 415, "multipart/form-data upload"},
		{"no file", "", mw.FormDataContentType(), noFile.Bytes(), 400, "no \"file\" part"},
		{"too big", "", "audio/wav", endless, 413, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, v, b := send(t, url+tc.path, tc.ctype, tc.body)
			msg, _ := path(v, "error", "message").(string)
			if code != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %s; want %d mentioning %q", code, b, tc.status, tc.want)
			}
		})
	}

	// GET is not allowed; an audio-only server has no chat.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	code, v := post(t, hs, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}]}`)
	if msg, _ := path(v, "error", "message").(string); code != 404 || !strings.Contains(msg, "no language model") {
		t.Errorf("chat on an audio-only server: %d %v", code, v)
	}
}

// TestAudioTagsSlowBody: a body that stops arriving ends the request
// after BodyTimeout with a 408 (a slow client cannot hold the tagger).
func TestAudioTagsSlowBody(t *testing.T) {
	_, hs := startServer(t, nil, Options{Audio: openTagger(t), BodyTimeout: 300 * time.Millisecond})
	wavBytes, err := os.ReadFile(filepath.Join(arwkvDir, "mm.wav"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write(wavBytes[:5000])
		time.Sleep(3 * time.Second) // stalls
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", hs.URL+"/v1/audio/tags", pr)
	req.Header.Set("Content-Type", "audio/wav")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 408 || !strings.Contains(string(b), "stopped arriving") || time.Since(start) > 2*time.Second {
		t.Errorf("%d after %v: %s", resp.StatusCode, time.Since(start), b)
	}
}

// TestAudioTagsWithoutTagger: a language-model server says how to enable
// the endpoint.
func TestAudioTagsWithoutTagger(t *testing.T) {
	_, hs := startServer(t, loadModel(t, tinyConfig(), 1), Options{})
	code, v, _ := send(t, hs.URL+"/v1/audio/tags", "audio/wav", []byte("RIFF"))
	if msg, _ := path(v, "error", "message").(string); code != 404 || !strings.Contains(msg, "--audio-model") {
		t.Errorf("%d %v", code, v)
	}
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Error("a server with neither a model nor a tagger was created")
	}
}

func patch(b []byte, off int, v ...byte) []byte {
	c := bytes.Clone(b)
	copy(c[off:], v)
	return c
}
