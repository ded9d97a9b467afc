package kernelstest

import (
	"fmt"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// drawCases checks kernels.Drawer against the host sampler it stands in
// for (core/sample): for each case, rows of logits (a base row with a
// little noise per row, so that rows differ) are drawn on the backend with
// the sampler's Plan and a spread of uniform numbers, and every row the
// backend does not flag must give the host's token for the same number.
// The flag must be rare on ordinary rows (so that the comparison is not
// vacuous; rows of thousands of nearly equal probabilities excepted) and
// raised where the host must decide: every token banned, an infinite
// logit.
func drawCases(t *testing.T, h *H) {
	d, ok := h.Be.(kernels.Drawer)
	if !ok {
		t.Skip("no kernels.Drawer")
	}
	const rows = 24
	lm := func(V int, strong int, spread float64) []float32 {
		x := h.Randn(V, spread)
		for i := range strong {
			x[(i*7919+13)%V] += float32(8 + 4*h.Rng.Float64())
		}
		return x
	}
	type tcase struct {
		name    string
		p       sample.Params
		base    []float32
		history []int32 // tokens recorded before the draws (penalties)
		bans    []int32
		doubt   bool // every row must be flagged
		maxRate float64
	}
	V := 65536
	ties := lm(V, 0, 1)
	ties[5], ties[9], ties[13] = 20, 20, 20
	nan := lm(V, 10, 1)
	nan[3], nan[77] = float32(math.NaN()), float32(math.NaN())
	inf := lm(V, 10, 1)
	inf[42] = float32(math.Inf(1))
	banAll := make([]int32, 100)
	for i := range banAll {
		banAll[i] = int32(i)
	}
	chatHist := []int32{13, 7932, 13, 15851, 99, 13, 40000}
	cases := []tcase{
		{name: "chat", p: sample.DefaultChat(), base: lm(V, 20, 2), history: chatHist, bans: []int32{0}, maxRate: 0.1},
		{name: "topp0.85_T0.7", p: sample.Params{Temperature: 0.7, TopP: 0.85, PresencePenalty: 0.2, FrequencyPenalty: 0.2, PenaltyDecay: 0.996}, base: lm(V, 20, 2), history: chatHist, maxRate: 0.1},
		{name: "topk50_T1.3", p: sample.Params{Temperature: 1.3, TopP: 1, TopK: 50}, base: lm(V, 20, 1), maxRate: 0.1},
		{name: "topp0.5_topk10", p: sample.Params{Temperature: 1, TopP: 0.5, TopK: 10}, base: lm(V, 30, 1), maxRate: 0.1},
		{name: "nofilter_T1", p: sample.Params{Temperature: 1, TopP: 1}, base: lm(V, 20, 2), maxRate: 0.1},
		{name: "nofilter_T0.5_V3001", p: sample.Params{Temperature: 0.5, TopP: 1}, base: lm(3001, 5, 2), maxRate: 0.1},
		{name: "greedy_penalties", p: sample.Params{PresencePenalty: 0.5, FrequencyPenalty: 0.5}, base: lm(V, 20, 2), history: chatHist, maxRate: 0.1},
		// Thousands of nearly equal probabilities: near-ties at the cutoff
		// are common, and the host decides many rows.
		{name: "flat_topp0.3", p: sample.DefaultChat(), base: lm(V, 0, 0.05), maxRate: 0.75},
		{name: "ties_topp0", p: sample.Params{Temperature: 1, TopP: 0}, base: ties, maxRate: 0.1},
		{name: "ties_topk2", p: sample.Params{Temperature: 1, TopP: 1, TopK: 2}, base: ties, maxRate: 0.1},
		{name: "nan", p: sample.DefaultChat(), base: nan, maxRate: 0.1},
		{name: "all_banned", p: sample.DefaultChat(), base: lm(100, 3, 1), bans: banAll, doubt: true},
		{name: "inf", p: sample.DefaultChat(), base: inf, doubt: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			V := len(c.base)
			smp := sample.New(c.p, V)
			smp.Ban(c.bans...)
			for _, tok := range c.history {
				smp.Record(tok % int32(V))
			}
			plan := smp.Plan()
			x := make([]float32, rows*V)
			specs := make([]kernels.DrawSpec, rows)
			for r := range rows {
				row := x[r*V : (r+1)*V]
				copy(row, c.base)
				if r > 0 { // rows differ a little (the ties stay ties)
					for j := range 50 {
						i := (r*131 + j*977) % V
						if row[i] != 20 {
							row[i] += float32(0.3 * h.Rng.NormFloat64())
						}
					}
				}
				specs[r] = kernels.DrawSpec{U: (float64(r) + h.Rng.Float64()) / rows, InvTemp: plan.InvTemp, TopP: plan.TopP, TopK: plan.TopK}
				for _, s := range plan.Shifts {
					specs[r].Shifts = append(specs[r].Shifts, kernels.LogitShift{ID: s.ID, Sub: s.Sub})
				}
			}
			// All rows in one launch (a few blocks a row), then the first
			// rows alone (a row over many blocks): the same tokens.
			got := h.draw(d, x, V, specs)
			for r := range 3 {
				one := h.draw(d, x[r*V:(r+1)*V], V, specs[r:r+1])
				if one[0] != got[2*r] || one[1] != got[2*r+1] {
					t.Errorf("row %d alone: token %d flag %d; among %d rows: %d, %d", r, one[0], one[1], rows, got[2*r], got[2*r+1])
				}
			}
			if c.name == "chat" { // many rows: one block a row
				const many = 7 * rows
				xs, ss := make([]float32, 0, many*V), make([]kernels.DrawSpec, 0, many)
				for range 7 {
					xs, ss = append(xs, x...), append(ss, specs...)
				}
				all := h.draw(d, xs, V, ss)
				for r := range many {
					if all[2*r] != got[2*(r%rows)] || all[2*r+1] != got[2*(r%rows)+1] {
						t.Errorf("row %d of %d: token %d flag %d, among %d rows: %d, %d", r, many, all[2*r], all[2*r+1], rows, got[2*(r%rows)], got[2*(r%rows)+1])
					}
				}
			}
			flagged := 0
			var kept []string
			for r := range rows {
				tok, flag := got[2*r], got[2*r+1]
				want := smp.Pick(x[r*V:(r+1)*V], specs[r].U)
				switch {
				case c.doubt && flag != 1:
					t.Errorf("row %d: token %d not flagged; the host must decide (host: %d)", r, tok, want)
				case flag == 1:
					flagged++
				case flag != 0:
					t.Errorf("row %d: flag %d", r, flag)
				case tok != want:
					t.Errorf("row %d (u %.6f): token %d, host sampler %d", r, specs[r].U, tok, want)
				default:
					kept = append(kept, fmt.Sprint(tok))
				}
			}
			if !c.doubt && float64(flagged) > c.maxRate*rows {
				t.Errorf("%d of %d rows flagged for the host (at most %.0f%% expected)", flagged, rows, 100*c.maxRate)
			}
			t.Logf("%d of %d rows flagged; tokens %v", flagged, rows, kept)
		})
	}
}

// draw runs d.Draw on the rows of x (V logits each) under specs and
// returns the [token, flag] pairs; the work tensor starts poisoned.
func (h *H) draw(d kernels.Drawer, x []float32, V int, specs []kernels.DrawSpec) []int32 {
	h.T.Helper()
	rows := len(specs)
	spec, err := kernels.EncodeDraws(specs)
	if err != nil {
		h.T.Fatal(err)
	}
	st, err := h.Be.Alloc(kernels.I32, 1, len(spec)/4)
	if err != nil {
		h.T.Fatal(err)
	}
	defer h.Be.Free(st)
	if err := h.Be.Upload(st, spec); err != nil {
		h.T.Fatal(err)
	}
	xt, work := h.Upload(rows, V, x), h.Out(1, kernels.DrawWork(rows, V)) // freed when the test ends
	out, err := h.Be.Alloc(kernels.I32, 1, 2*rows)
	if err != nil {
		h.T.Fatal(err)
	}
	defer h.Be.Free(out)
	d.Draw(out, xt, st, work)
	return h.GetI32(out)
}
