package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var inf = float32(math.Inf(1))

// refSampler is the straightforward PIPELINE algorithm: penalties from a map,
// a full sort, cumsum cutoff, top-k by zeroing, probs^(1/T), and a draw over
// the cumulative distribution in id order. It shares only softmax with the
// package (tested on its own in TestSoftmax).
type refSampler struct {
	p      Params
	occ    map[int32]float64
	banned map[int32]bool
}

func newRef(p Params) *refSampler {
	return &refSampler{p: p.sanitize(), occ: map[int32]float64{}, banned: map[int32]bool{}}
}

func (r *refSampler) sample(logits []float32, u float64) int32 {
	n := len(logits)
	x := make([]float32, n)
	for i, v := range logits {
		if math.IsNaN(float64(v)) {
			v = -inf
		}
		x[i] = v
	}
	for id, c := range r.occ {
		if int(id) < n {
			x[id] = float32(float64(x[id]) - (float64(r.p.PresencePenalty) + c*float64(r.p.FrequencyPenalty)))
		}
	}
	for id := range r.banned {
		if int(id) < n {
			x[id] = -inf
		}
	}
	probs := make([]float32, n)
	if n == 0 || !softmax(probs, x) {
		return -1
	}
	temp, topP, topK := float64(r.p.Temperature), float64(r.p.TopP), r.p.TopK
	if temp == 0 {
		temp, topP = 1, 0
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if probs[a] != probs[b] {
			return cmp.Compare(probs[b], probs[a])
		}
		return cmp.Compare(a, b)
	})
	if topP < 1 {
		var cum float64
		for _, id := range order {
			cum += float64(probs[id])
			if cum >= topP {
				cutoff := probs[id]
				for i := range probs {
					if probs[i] < cutoff {
						probs[i] = 0
					}
				}
				break
			}
		}
	}
	if topK > 0 && topK < n {
		for _, id := range order[topK:] {
			probs[id] = 0
		}
	}
	var pmax float32
	for _, p := range probs {
		pmax = max(pmax, p)
	}
	w := make([]float64, n)
	var total float64
	for i, p := range probs {
		if p > 0 {
			if temp == 1 {
				w[i] = float64(p)
			} else {
				w[i] = math.Pow(float64(p)/float64(pmax), 1/temp)
			}
		}
		total += w[i]
	}
	target := u * total
	var cum float64
	last := int32(-1)
	for i := range w {
		if w[i] > 0 || probs[i] > 0 {
			cum += w[i]
			last = int32(i)
			if cum > target {
				return int32(i)
			}
		}
	}
	return last
}

func (r *refSampler) record(tok int32) {
	d := float64(r.p.PenaltyDecay)
	for id := range r.occ {
		r.occ[id] *= d
	}
	r.occ[tok]++
}

// randomLogits draws logits of several shapes: smooth normals, peaky model-
// like rows, and coarsely quantized rows full of ties.
func randomLogits(rng *rand.Rand, n int, kind int) []float32 {
	x := make([]float32, n)
	switch kind % 4 {
	case 0:
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
	case 1:
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
		}
		for range 1 + rng.IntN(5) {
			x[rng.IntN(n)] += float32(8 + rng.Float64()*10)
		}
	case 2:
		for i := range x {
			x[i] = float32(math.Round(rng.NormFloat64() * 2))
		}
	case 3:
		for i := range x {
			x[i] = float32(rng.IntN(3)) // very heavy ties
		}
	}
	return x
}

func TestMatchesReference(t *testing.T) {
	temps := []float32{0, 0.3, 1, 1.5}
	topPs := []float32{0, 0.05, 0.3, 0.85, 0.999, 1}
	topKs := []int{0, 1, 5, 100}
	sizes := []int{1, 7, 100, 3000, 7, 100, 3000, 5000, 300, 65536}
	var cases, checked, distinct int
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := sizes[int(seed)%len(sizes)]
		p := Params{
			Temperature:      temps[rng.IntN(len(temps))],
			TopP:             topPs[rng.IntN(len(topPs))],
			TopK:             topKs[rng.IntN(len(topKs))],
			PresencePenalty:  float32(rng.Float64()),
			FrequencyPenalty: float32(rng.Float64()),
			PenaltyDecay:     []float32{0, 0.5, 0.996}[rng.IntN(3)],
			Seed:             seed,
		}
		s := New(p, n)
		ref := newRef(p)
		if n > 3 {
			ban := []int32{int32(rng.IntN(n)), int32(rng.IntN(n))}
			if n < 10 { // ban most of a tiny vocabulary so top-k exceeds what is left
				ban = append(ban, int32(rng.IntN(n)), int32(rng.IntN(n)))
			}
			s.Ban(ban...)
			for _, id := range ban {
				ref.banned[id] = true
			}
		}
		steps := 20
		if n == 65536 {
			steps = 3
		}
		base := randomLogits(rng, n, int(seed/uint64(len(sizes))))
		seen := map[int32]bool{}
		for step := range steps {
			logits := base
			if step%2 == 1 {
				logits = randomLogits(rng, n, int(seed)+step)
			}
			var u float64
			switch step {
			case 0:
				u = 0
			case 1:
				u = math.Nextafter(1, 0)
			default:
				u = rng.Float64()
			}
			got := s.sample(logits, u)
			want := ref.sample(logits, u)
			cases++
			if got != want {
				t.Fatalf("seed %d step %d (n=%d %+v u=%v): got token %d, reference %d",
					seed, step, n, p, u, got, want)
			}
			if got >= 0 {
				checked++
				seen[got] = true
				s.record(got)
				ref.record(got)
			}
		}
		distinct += len(seen)
		for id, c := range ref.occ {
			if got, ok := s.Occurrence(id); !ok || math.Abs(got-c) > 1e-12*max(1, c) {
				t.Fatalf("seed %d: occurrence[%d] = %v, reference %v", seed, id, got, c)
			}
		}
	}
	// Guard against a vacuous comparison (everything -1 or one token).
	if checked < cases*9/10 || distinct < 1000 {
		t.Fatalf("only %d of %d draws produced a token, %d distinct per-seed tokens", checked, cases, distinct)
	}
}

// TestFilterWidens covers the case where float64 rounding makes the bucket
// sums reach top_p one bucket earlier than the sorted running sum does: the
// filter must then widen its candidate set and still agree with a full sort.
func TestFilterWidens(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 34))
	var found int
	for trial := 0; trial < 20000 && found < 20; trial++ {
		probs := make([]float32, 40)
		for i := range probs {
			probs[i] = float32(rng.Float64() * math.Pow(2, -float64(rng.IntN(70))))
		}
		var total float64
		for _, p := range probs {
			total += float64(p)
		}
		for i := range probs {
			probs[i] = float32(float64(probs[i]) / total)
		}
		// Bucket sums in the filter's order, and sorted prefix sums.
		var hist [numBuckets]float64
		for _, p := range probs {
			hist[math.Float32bits(p)>>bucketShift] += float64(p)
		}
		sorted := slices.Clone(probs)
		slices.SortFunc(sorted, func(a, b float32) int { return cmp.Compare(b, a) })
		var cumB, cumS float64
		i := 0
		for b := numBuckets - 1; b >= 0; b-- {
			if hist[b] == 0 {
				continue
			}
			cumB += hist[b]
			for i < len(sorted) && int(math.Float32bits(sorted[i])>>bucketShift) >= b {
				cumS += float64(sorted[i])
				i++
			}
			if cumB > cumS && cumB < 1 && i < len(sorted) {
				found++
				topP := cumB // the bucket walk stops here, the sorted sum does not
				for _, k := range []int{0, 3} {
					s := New(Params{}, len(probs))
					got := slices.Clone(s.filter(probs, topP, k))
					want := refFilter(probs, topP, k)
					if !slices.Equal(got, want) {
						t.Fatalf("trial %d top_p %v k %d: filter kept %v, full sort %v", trial, topP, k, got, want)
					}
				}
				break
			}
		}
	}
	if found == 0 {
		t.Fatal("no rounding case found; the search needs adjusting")
	}
}

// refFilter applies top-p and top-k with a full sort and returns the kept ids.
func refFilter(probs []float32, topP float64, topK int) []int32 {
	order := make([]int32, len(probs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if probs[a] != probs[b] {
			return cmp.Compare(probs[b], probs[a])
		}
		return cmp.Compare(a, b)
	})
	cutoff := float32(0)
	var cum float64
	for _, id := range order {
		cum += float64(probs[id])
		if cum >= topP {
			cutoff = probs[id]
			break
		}
	}
	var kept []int32
	for rank, id := range order {
		if probs[id] > 0 && probs[id] >= cutoff && (topK == 0 || rank < topK) {
			kept = append(kept, id)
		}
	}
	slices.Sort(kept)
	return kept
}

func TestSoftmax(t *testing.T) {
	// expNeg against math.Exp, within one float32 ulp (or one denormal step).
	tab := expTable()
	for i := 0; i <= 2_000_000; i++ {
		d := -104 * float64(i) / 2_000_000
		got := float64(expNeg(d, &tab))
		want := math.Exp(d)
		ulp := math.Max(float64(math.Nextafter32(float32(want), inf)-float32(want)), 1.401298464324817e-45)
		if math.Abs(got-want) > ulp {
			t.Fatalf("expNeg(%v) = %v, math.Exp = %v (|Δ| %g > ulp %g)", d, got, want, math.Abs(got-want), ulp)
		}
	}
	if expNeg(math.Inf(-1), &tab) != 0 || expNeg(-200, &tab) != 0 || expNeg(0, &tab) != 1 {
		t.Fatal("expNeg edge cases wrong")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	x := randomLogits(rng, 5000, 1)
	x[3] = -inf
	p := make([]float32, len(x))
	if !softmax(p, x) {
		t.Fatal("softmax reported no token")
	}
	m := slices.Max(x)
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - float64(m))
	}
	var total float64
	for i, v := range x {
		want := math.Exp(float64(v)-float64(m)) / sum
		if math.Abs(float64(p[i])-want) > 3e-7*want+1e-45 {
			t.Fatalf("p[%d] = %v, want %v", i, p[i], want)
		}
		total += float64(p[i])
	}
	if p[3] != 0 || math.Abs(total-1) > 1e-5 {
		t.Fatalf("p[-inf] = %v, total %v", p[3], total)
	}
	if softmax(p[:2], []float32{-inf, -inf}) {
		t.Fatal("all -inf should report no token")
	}
	if !softmax(p[:3], []float32{inf, 1, inf}) || p[0] != 0.5 || p[1] != 0 || p[2] != 0.5 {
		t.Fatalf("+inf logits: %v", p[:3])
	}
}

func TestGreedy(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"argmax", []float32{0.1, 3, -2, 2.9}, 1},
		{"ties pick lowest", []float32{1, 5, 5, 5}, 1},
		{"negative", []float32{-3, -1, -2}, 1},
		{"nan ignored", []float32{nan, -1, nan, 0}, 3},
		{"all nan", []float32{nan, nan}, -1},
		{"empty", nil, -1},
		{"-inf and +inf", []float32{-inf, inf, 2}, 1},
	}
	for _, tc := range tests {
		if got := Greedy(tc.logits); got != tc.want {
			t.Errorf("%s: Greedy = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestTemperatureZeroIsGreedy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	s := New(Params{Seed: 1}, 500) // zero value: T=0, no penalties
	for range 200 {
		x := randomLogits(rng, 500, 0)
		if got, want := s.Sample(x), Greedy(x); got != want {
			t.Fatalf("T=0 sampled %d, argmax %d", got, want)
		}
	}
	// Ties for the top probability: PIPELINE keeps all of them (top_p=0
	// keeps p >= max), so both tied tokens appear and nothing else does.
	counts := map[int32]int{}
	for range 400 {
		counts[s.Sample([]float32{0, 4, 1, 4, 3.99})]++
	}
	if len(counts) != 2 || counts[1] < 150 || counts[3] < 150 {
		t.Fatalf("tied greedy draws: %v, want tokens 1 and 3 about equally", counts)
	}
}

func TestSmallTemperatureIsArgmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, temp := range []float32{1e-3, 1e-6, 1e-30} {
		s := New(Params{Temperature: temp, TopP: 1, Seed: 9}, 1000)
		for range 50 {
			x := randomLogits(rng, 1000, 0)
			if got, want := s.Sample(x), Greedy(x); got != want {
				t.Fatalf("T=%g sampled %d, argmax %d", temp, got, want)
			}
		}
	}
	// A large temperature flattens: with T=1000 on 4 tokens every token
	// shows up even though one logit dominates at T=1.
	s := New(Params{Temperature: 1000, TopP: 1, Seed: 2}, 4)
	seen := map[int32]bool{}
	for range 200 {
		seen[s.Sample([]float32{10, 0, 0, 0})] = true
	}
	if len(seen) != 4 {
		t.Fatalf("T=1000 drew only %v", seen)
	}
}

func TestTopK1IsGreedy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, temp := range []float32{0.5, 1, 2} {
		s := New(Params{Temperature: temp, TopP: 1, TopK: 1, Seed: 11}, 2000)
		for i := range 100 {
			x := randomLogits(rng, 2000, i)
			if got, want := s.Sample(x), Greedy(x); got != want {
				t.Fatalf("T=%v top_k=1 sampled %d, argmax %d (logits kind %d)", temp, got, want, i%4)
			}
		}
	}
}

func TestPenalties(t *testing.T) {
	// Each case: logits, params (greedy so the choice shows the penalized
	// argmax), tokens recorded beforehand, hand-computed penalized logits and
	// the token then chosen.
	tests := []struct {
		name    string
		logits  []float32
		p       Params
		history []int32
		want    []float32
		pick    int32
	}{
		{
			name:    "presence and frequency",
			logits:  []float32{2.0, 1.9, 0},
			p:       Params{PresencePenalty: 0.5, FrequencyPenalty: 0.5},
			history: []int32{0},
			want:    []float32{1.0, 1.9, 0}, // 2 - (0.5 + 1*0.5)
			pick:    1,
		},
		{
			name:    "frequency grows with count",
			logits:  []float32{3, 2, 2.3},
			p:       Params{FrequencyPenalty: 0.4},
			history: []int32{0, 0, 1},
			want:    []float32{2.2, 1.6, 2.3}, // 3 - 2*0.4, 2 - 0.4
			pick:    2,
		},
		{
			name:    "presence only counts once",
			logits:  []float32{3, 2.5},
			p:       Params{PresencePenalty: 0.4},
			history: []int32{0, 0, 0},
			want:    []float32{2.6, 2.5},
			pick:    0,
		},
		{
			name:    "decay shrinks the frequency part",
			logits:  []float32{3, 2.5},
			p:       Params{PresencePenalty: 0.1, FrequencyPenalty: 1, PenaltyDecay: 0.5},
			history: []int32{0, 0},                 // occ = 1*0.5 + 1 = 1.5
			want:    []float32{3 - 0.1 - 1.5, 2.5}, // 1.4
			pick:    1,
		},
		{
			name:    "negative presence favours repeats",
			logits:  []float32{1, 2},
			p:       Params{PresencePenalty: -2},
			history: []int32{0},
			want:    []float32{3, 2},
			pick:    0,
		},
	}
	for _, tc := range tests {
		s := New(tc.p, len(tc.logits))
		for _, id := range tc.history {
			s.record(id)
		}
		got := s.penalize(tc.logits)
		for i := range tc.want {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: penalized logits %v, want %v", tc.name, got, tc.want)
				break
			}
		}
		orig := slices.Clone(tc.logits)
		if tok := s.Sample(tc.logits); tok != tc.pick {
			t.Errorf("%s: picked %d, want %d", tc.name, tok, tc.pick)
		}
		if !slices.Equal(orig, tc.logits) {
			t.Errorf("%s: Sample modified the caller's logits: %v -> %v", tc.name, orig, tc.logits)
		}
	}
}

// forced returns logits that make tok the greedy choice.
func forced(n int, tok int32) []float32 {
	x := make([]float32, n)
	x[tok] = 100
	return x
}

func TestDecay(t *testing.T) {
	s := New(Params{PenaltyDecay: 0.5}, 4) // greedy, penalties 0: choices are forced
	for _, tok := range []int32{0, 1, 0, 2} {
		if got := s.Sample(forced(4, tok)); got != tok {
			t.Fatalf("forced %d, sampled %d", tok, got)
		}
	}
	// A: 1 -> 0.5 -> 1.25 -> 0.625; B: 1 -> 0.5 -> 0.25; C: 1.
	want := map[int32]float64{0: 0.625, 1: 0.25, 2: 1}
	for id, w := range want {
		if got, ok := s.Occurrence(id); !ok || got != w {
			t.Errorf("occurrence[%d] = %v (%v), want %v", id, got, ok, w)
		}
	}
	if _, ok := s.Occurrence(3); ok {
		t.Error("token 3 is in the table without being sampled")
	}

	// alpha_decay 0.996 over ten draws of token 1 then one of token 2:
	// occ[1] = sum_{k=1..10} 0.996^k, occ[2] = 1.
	s = New(Params{PenaltyDecay: 0.996}, 4)
	for range 10 {
		s.Sample(forced(4, 1))
	}
	s.Sample(forced(4, 2))
	var w1 float64
	for k := 1; k <= 10; k++ {
		w1 += math.Pow(float64(float32(0.996)), float64(k))
	}
	if got, _ := s.Occurrence(1); math.Abs(got-w1) > 1e-12 {
		t.Errorf("occurrence[1] = %v, want %v", got, w1)
	}
	// Decay 0 means none: counts just add up.
	s = New(Params{}, 4)
	for range 3 {
		s.Sample(forced(4, 3))
	}
	if got, _ := s.Occurrence(3); got != 3 {
		t.Errorf("no-decay occurrence = %v, want 3", got)
	}
	s.Reset()
	if _, ok := s.Occurrence(3); ok {
		t.Error("Reset left token 3 in the table")
	}
	if got := s.penalize([]float32{1, 1, 1, 1}); !slices.Equal(got, []float32{1, 1, 1, 1}) {
		t.Errorf("penalties after Reset: %v", got)
	}
}

func TestBan(t *testing.T) {
	const n = 64
	s := New(Params{Temperature: 1, TopP: 1, Seed: 5}, n)
	s.Ban(0, 63, 63, -4, 100) // duplicates, negatives and out-of-range ids are harmless
	x := make([]float32, n)
	x[0], x[63] = 50, 40 // the banned tokens would otherwise always win
	counts := map[int32]int{}
	for range 3000 {
		tok := s.Sample(x)
		if tok == 0 || tok == 63 || tok < 0 || tok >= n {
			t.Fatalf("sampled banned or invalid token %d", tok)
		}
		counts[tok]++
	}
	if len(counts) < 55 {
		t.Errorf("only %d distinct tokens over 3000 flat draws", len(counts))
	}
	// Everything banned or unusable: -1 and nothing recorded.
	s = New(DefaultChat(), 3)
	s.Ban(0, 1)
	nan := float32(math.NaN())
	for _, x := range [][]float32{{1, 2, nan}, {1, 2, -inf}, {}} {
		if tok := s.Sample(x); tok != -1 {
			t.Errorf("Sample(%v) with 0,1 banned = %d, want -1", x, tok)
		}
	}
	if len(s.seen) != 0 {
		t.Error("a failed draw was recorded")
	}
	if tok := s.Sample([]float32{9, 9, 0}); tok != 2 {
		t.Errorf("only token 2 allowed, got %d", tok)
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	rows := make([][]float32, 100)
	for i := range rows {
		rows[i] = randomLogits(rng, 1000, i)
	}
	run := func(seed uint64, reset bool) []int32 {
		s := New(Params{Temperature: 1, TopP: 0.9, PresencePenalty: 0.3, Seed: seed}, 1000)
		var out []int32
		for _, r := range rows {
			if reset {
				s.Reset()
			}
			out = append(out, s.Sample(r))
		}
		return out
	}
	a, b := run(42, false), run(42, false)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different sequences")
	}
	if c := run(43, false); slices.Equal(a, c) {
		t.Fatal("different seeds gave identical sequences")
	}
	// Reset clears penalties but not the RNG: with penalties 0 the sequence
	// is unchanged by resets.
	noPen := func(reset bool) []int32 {
		s := New(Params{Temperature: 1, TopP: 1, Seed: 6}, 1000)
		var out []int32
		for _, r := range rows {
			if reset {
				s.Reset()
			}
			out = append(out, s.Sample(r))
		}
		return out
	}
	if !slices.Equal(noPen(false), noPen(true)) {
		t.Fatal("Reset changed the random sequence")
	}
}

// chiSquare returns the statistic for observed counts against probabilities.
func chiSquare(counts []int, probs []float64, total int) float64 {
	var x2 float64
	for i, p := range probs {
		e := p * float64(total)
		d := float64(counts[i]) - e
		x2 += d * d / e
	}
	return x2
}

func TestDistribution(t *testing.T) {
	base := []float64{0.4, 0.25, 0.15, 0.1, 0.06, 0.04}
	logits := make([]float32, len(base))
	for i, p := range base {
		logits[i] = float32(math.Log(p))
	}
	norm := func(w []float64) []float64 {
		var s float64
		for _, v := range w {
			s += v
		}
		out := make([]float64, len(w))
		for i, v := range w {
			out[i] = v / s
		}
		return out
	}
	pow := func(e float64) []float64 {
		w := make([]float64, len(base))
		for i, p := range base {
			w[i] = math.Pow(p, e)
		}
		return norm(w)
	}
	tests := []struct {
		name string
		p    Params
		want []float64
	}{
		{"plain", Params{Temperature: 1, TopP: 1}, base},
		{"T=2", Params{Temperature: 2, TopP: 1}, pow(0.5)},
		{"T=0.5", Params{Temperature: 0.5, TopP: 1}, pow(2)},
		// cumsum 0.4, 0.65 >= 0.6: cutoff 0.25 keeps tokens 0 and 1.
		{"top_p=0.6", Params{Temperature: 1, TopP: 0.6}, norm([]float64{0.4, 0.25, 0, 0, 0, 0})},
		{"top_k=3", Params{Temperature: 1, TopP: 1, TopK: 3}, norm([]float64{0.4, 0.25, 0.15, 0, 0, 0})},
		{"top_p=0.85,T=2", Params{Temperature: 2, TopP: 0.85}, norm([]float64{
			math.Sqrt(0.4), math.Sqrt(0.25), math.Sqrt(0.15), math.Sqrt(0.1), 0, 0})},
	}
	const draws = 60000
	for i, tc := range tests {
		tc.p.Seed = uint64(100 + i)
		s := New(tc.p, len(base))
		counts := make([]int, len(base))
		for range draws {
			counts[s.Sample(logits)]++
		}
		// Tokens with probability 0 must never appear; the rest must fit.
		var probs []float64
		var obs []int
		for j, p := range tc.want {
			if p == 0 {
				if counts[j] != 0 {
					t.Errorf("%s: token %d drawn %d times, want never", tc.name, j, counts[j])
				}
				continue
			}
			probs = append(probs, p)
			obs = append(obs, counts[j])
		}
		// Critical value for 5 degrees of freedom at p = 1e-6 is about 35.9.
		if x2 := chiSquare(obs, probs, draws); x2 > 36 {
			t.Errorf("%s: chi-square %.1f over %d draws (counts %v, want probs %v)", tc.name, x2, draws, counts, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name string
		p    Params
		want string // "" = valid
	}{
		{"default chat", DefaultChat(), ""},
		{"zero value", Params{}, ""},
		{"top_k large", Params{Temperature: 1, TopP: 1, TopK: 1 << 20}, ""},
		{"nan temperature", Params{Temperature: nan}, "temperature"},
		{"negative temperature", Params{Temperature: -1}, "temperature"},
		{"inf temperature", Params{Temperature: inf}, "temperature"},
		{"top_p above 1", Params{TopP: 1.01}, "top_p"},
		{"top_p negative", Params{TopP: -0.1}, "top_p"},
		{"top_p nan", Params{TopP: nan}, "top_p"},
		{"top_k negative", Params{TopK: -1}, "top_k"},
		{"presence nan", Params{PresencePenalty: nan}, "presence"},
		{"frequency inf", Params{FrequencyPenalty: -inf}, "frequency"},
		{"decay above 1", Params{PenaltyDecay: 1.5}, "decay"},
		{"decay negative", Params{PenaltyDecay: -0.1}, "decay"},
		{"temperature at the limit", Params{Temperature: MaxTemperature}, ""},
		{"temperature above the limit", Params{Temperature: MaxTemperature + 0.01}, "temperature"},
		{"penalties at the limits", Params{PresencePenalty: MinPenalty, FrequencyPenalty: MaxPenalty}, ""},
		{"presence above the limit", Params{PresencePenalty: MaxPenalty + 0.5}, "presence"},
		{"frequency below the limit", Params{FrequencyPenalty: MinPenalty - 0.5}, "frequency"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	d := DefaultChat()
	if d.Temperature != 1 || d.TopP != 0.3 || d.PresencePenalty != 0.5 || d.FrequencyPenalty != 0.5 ||
		d.PenaltyDecay != 0.996 || d.TopK != 0 {
		t.Errorf("DefaultChat = %+v", d)
	}
	// Invalid params never make Sample panic or return an out-of-range id.
	for _, tc := range tests {
		s := New(tc.p, 10)
		for range 20 {
			if tok := s.Sample([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}); tok < 0 || tok >= 10 {
				t.Errorf("%s: Sample = %d", tc.name, tok)
			}
		}
	}
}

// benchLogits mimics a language model's output row: a broad bulk and a few
// strong candidates.
func benchLogits(n int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	return randomLogits(rng, n, 1)
}

func BenchmarkSample(b *testing.B) {
	cases := []struct {
		name   string
		p      Params
		logits []float32
	}{
		{"chat_topp0.3", DefaultChat(), benchLogits(65536)},
		{"topp0.85", Params{Temperature: 1, TopP: 0.85, PresencePenalty: 0.2, FrequencyPenalty: 0.2, PenaltyDecay: 0.996}, benchLogits(65536)},
		{"flat_topp0.3", DefaultChat(), randomLogits(rand.New(rand.NewPCG(3, 4)), 65536, 0)},
		{"topk100_T0.7", Params{Temperature: 0.7, TopP: 1, TopK: 100}, benchLogits(65536)},
		{"nofilter_T1", Params{Temperature: 1, TopP: 1}, benchLogits(65536)},
		{"greedy", Params{}, benchLogits(65536)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := New(c.p, len(c.logits))
			s.Ban(0)
			for b.Loop() {
				s.Sample(c.logits)
				if len(s.seen) > 200 {
					s.Reset() // keep the table the size of a typical reply
				}
			}
		})
	}
}

// BenchmarkReferenceFullSort is the straightforward full-sort algorithm, for
// comparison with BenchmarkSample/chat_topp0.3.
func BenchmarkReferenceFullSort(b *testing.B) {
	r := newRef(DefaultChat())
	x := benchLogits(65536)
	for b.Loop() {
		r.sample(x, 0.5)
	}
}

func BenchmarkSoftmax(b *testing.B) {
	x := benchLogits(65536)
	p := make([]float32, len(x))
	for b.Loop() {
		softmax(p, x)
	}
}

func BenchmarkGreedy(b *testing.B) {
	x := make([]float32, 65536)
	for i := range x {
		x[i] = float32((i*7919)%65536) / 65536
	}
	for b.Loop() {
		Greedy(x)
	}
}

// TestPlan requires a Plan to describe the draw completely: Plan.Pick (its
// shifts applied to the logits, then softmax, top-p, top-k and the draw
// with its settings and uniform number, what a device does with it) must
// give the token the Sampler's Pick gives, for settings with penalties, bans, a decay, greedy
// temperature and each filter.
func TestPlan(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	settings := []Params{
		DefaultChat(),
		{},
		{PresencePenalty: 1, FrequencyPenalty: -0.5},
		{Temperature: 0.7, TopP: 0.9, TopK: 20, FrequencyPenalty: 0.4, PenaltyDecay: 0.9},
		{Temperature: 1.5, TopP: 1, PresencePenalty: -1},
		{Temperature: 1, TopP: 1, TopK: 5000},
	}
	for _, p := range settings {
		for trial := range 20 {
			const n = 3000
			s := New(p, n)
			s.Ban(0, int32(1+trial))
			logits := randomLogits(rng, n, 1)
			// The penalties fall on the likeliest tokens, where they
			// change the draw.
			top := make([]int32, n)
			for i := range top {
				top[i] = int32(i)
			}
			slices.SortFunc(top, func(a, b int32) int { return cmp.Compare(logits[b], logits[a]) })
			for i := range 40 {
				s.Record(top[i%8])
			}
			plan := s.Plan()
			for k := range 64 {
				u := (float64(k) + rng.Float64()) / 64
				plan.U = u
				if got, want := plan.Pick(logits), s.Pick(logits, u); got != want {
					t.Fatalf("%+v, trial %d, u %v: the plan draws %d, Pick %d", p, trial, u, got, want)
				}
			}
		}
	}
}
