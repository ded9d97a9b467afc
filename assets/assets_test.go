package assets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestWorldVocab(t *testing.T) {
	v := WorldVocab()
	const wantSum = "e6dee3d4e31b4d5c40ac99508ac6c701ceef4bed681bf2167ce9a908552bca89"
	sum := sha256.Sum256(v)
	if got := hex.EncodeToString(sum[:]); got != wantSum {
		t.Fatalf("WorldVocab sha256 = %s, want %s (len %d)", got, wantSum, len(v))
	}
	if n := bytes.Count(v, []byte("\n")); n != 65529 {
		t.Errorf("WorldVocab has %d lines, want 65529", n)
	}
	// Each call is an independent copy.
	v[0] = 'X'
	if WorldVocab()[0] == 'X' {
		t.Error("modifying the result of WorldVocab changed the embedded data")
	}
}

func TestNotice(t *testing.T) {
	n := Notice()
	for _, want := range []string{"rwkv_vocab_v20230424.txt", "Apache-2.0"} {
		if !strings.Contains(n, want) {
			t.Errorf("Notice does not mention %q", want)
		}
	}
}

func TestAudioSetLabels(t *testing.T) {
	v := AudioSetLabels()
	lines := strings.Split(strings.TrimRight(string(v), "\n"), "\n")
	if len(lines) != 528 || lines[0] != "index,mid,display_name" {
		t.Fatalf("AudioSetLabels: %d lines starting %q, want 528 starting with the header", len(lines), lines[0])
	}
	if !strings.HasPrefix(lines[1], "0,/m/09x0r,") {
		t.Errorf("first class line %q, want index 0 Speech", lines[1])
	}
	v[0] = 'X'
	if AudioSetLabels()[0] == 'X' {
		t.Error("modifying the result of AudioSetLabels changed the embedded data")
	}
	n := AudioSetNotice()
	for _, want := range []string{"CC BY 4.0", "CC BY-SA 4.0", "Google"} {
		if !strings.Contains(n, want) {
			t.Errorf("AudioSetNotice does not mention %q", want)
		}
	}
}
