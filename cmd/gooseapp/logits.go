package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/goose-rwkv/goose/internal/npy"
)

// runLogits writes the logits after every token, from the zero state, as a
// float32 .npy of shape [T, vocab].
func runLogits(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("logits", stderr)
	var mf modelFlags
	mf.register(fs, "cpu")
	tokens := fs.String("tokens", "", "comma-separated token `ids`")
	mode := fs.String("mode", "seq", "seq (whole sequence at once) or rnn (one token at a time)")
	out := fs.String("out", "", "output `FILE.npy`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out FILE.npy is required")
	}
	if *mode != "seq" && *mode != "rnn" {
		return fmt.Errorf("--mode %q: want seq or rnn", *mode)
	}
	ids, err := parseIDs(*tokens)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("--tokens: no token ids")
	}
	m, _, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	defer m.Backend().Close()
	st, err := m.NewState()
	if err != nil {
		return err
	}
	defer st.Free()
	V := m.Config().Vocab
	logits := make([]float32, len(ids)*V)
	ctx := context.Background()
	if *mode == "seq" {
		err = m.ForwardAll(ctx, st, ids, logits)
	} else {
		for i, id := range ids {
			if err = m.Forward(ctx, st, []int32{id}, logits[i*V:(i+1)*V]); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if err := finiteLogits(logits, V); err != nil {
		return err
	}
	return npy.WriteFile(*out, []int{len(ids), V}, logits)
}

// parseIDs reads token ids separated by commas, spaces or newlines.
func parseIDs(s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad token id %q", f)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}

// finiteLogits fails when the model produced NaN or ±Inf: its weights (or
// an input state) are corrupt, and a file of NaNs is no answer.
func finiteLogits(logits []float32, V int) error {
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("the logits after token %d are not finite (logit %d is %v): the model's weights are corrupt; `gooseapp info --verify MODEL` checks the file", i/V, i%V, v)
		}
	}
	return nil
}
