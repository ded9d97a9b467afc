package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/audio"
)

// TestServeAudio runs serve with only --audio-model and posts the A-RWKV
// fixture's WAV over loopback to /v1/audio/tags.
func TestServeAudio(t *testing.T) {
	dir := "../../testdata/arwkv/"
	addr, stdout, stop := startServe(t, "--audio-model", dir+"mm.arwkv.pth", "--audio-config", dir+"mm.arwkv.json", "--backend", "cpu")
	wavBytes, err := os.ReadFile(dir + "mm.wav")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/audio/tags?top=2", "audio/wav", bytes.NewReader(wavBytes))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sum audio.Summary
	if err := json.Unmarshal(b, &sum); resp.StatusCode != 200 || err != nil || len(sum.Tags) != 2 || len(sum.Windows) != 2 || sum.Tags[0].Index != 1 {
		t.Fatalf("POST /v1/audio/tags: %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(stdout.String(), "/v1/audio/tags") {
		t.Errorf("serve did not announce the endpoint:\n%s", stdout.String())
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}
