// Package sample picks the next token from a model's logits.
//
// It follows the conventions of ChatRWKV's PIPELINE.sample_logits and the
// API_DEMO_CHAT generation loop (see the project's rwkv7-core.md §6.3):
//
//  1. Penalties: every token n seen so far has its logit lowered by
//     PresencePenalty + occurrence[n]·FrequencyPenalty. Banned tokens get −∞.
//  2. probs = softmax(logits) in float32. Temperature 0 means temperature 1
//     with top-p 0 (greedy; tokens tied for the largest probability share it).
//  3. Top-p: sort descending, take the running sum; the cutoff is the
//     probability at the first position where the sum reaches TopP, and every
//     token below the cutoff is dropped (ties with the cutoff are kept).
//  4. Top-k (0 < TopK < vocab): only the TopK most probable tokens stay.
//  5. Temperature applies to the surviving probabilities, probs^(1/T); they
//     are renormalized and one token is drawn.
//  6. Afterwards every occurrence entry is multiplied by PenaltyDecay, then the
//     drawn token's entry is increased by 1.
//
// Two details differ from the Python code, where it is ill-defined:
//   - TopP = 1 keeps every token. (In PIPELINE, a float32 running sum that
//     never reaches exactly 1 would make it greedy.) Likewise, if rounding
//     keeps the running sum below TopP, every token is kept.
//   - Ties are broken by token id: top-k keeps lower ids first when
//     probabilities are equal.
//
// The draw is a single uniform number u in [0,1) per call, mapped through the
// cumulative distribution in token-id order, like numpy.random.choice.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// Params holds the sampling settings. The zero value is greedy decoding with
// no penalties.
type Params struct {
	// Temperature divides the log-probabilities of the tokens that survive
	// top-p and top-k (probs^(1/T)). 0 means greedy: temperature 1 with
	// top-p 0, as in PIPELINE.
	Temperature float32
	// TopP is the nucleus mass in [0,1]. 0 keeps only the most probable
	// token(s) (all tokens tied at the top probability); 1 keeps all.
	TopP float32
	// TopK keeps only the TopK most probable tokens; 0 (or >= vocab) is off.
	TopK int
	// PresencePenalty is subtracted from the logit of every token already in
	// the occurrence table.
	PresencePenalty float32
	// FrequencyPenalty is multiplied by a token's (decayed) occurrence count
	// and subtracted from its logit.
	FrequencyPenalty float32
	// PenaltyDecay (alpha_decay) multiplies every occurrence count after each
	// sampled token, before the new token is counted. 0 means 1: no decay.
	PenaltyDecay float32
	// Seed seeds the sampler's random number generator.
	Seed uint64
}

// DefaultChat returns the settings of ChatRWKV's API_DEMO_CHAT for the G1
// models: temperature 1.0, top-p 0.3, presence and frequency penalties 0.5,
// decay 0.996, no top-k.
func DefaultChat() Params {
	return Params{
		Temperature:      1.0,
		TopP:             0.3,
		PresencePenalty:  0.5,
		FrequencyPenalty: 0.5,
		PenaltyDecay:     0.996,
	}
}

// Limits of the settings. The app, the terminal commands and the HTTP API
// accept the same ranges, the ones Validate checks (the README lists them):
// temperature 0 to MaxTemperature, top-p 0 to 1, top-k 0 (off) or more,
// presence and frequency penalties MinPenalty to MaxPenalty, penalty decay
// 0 to 1.
const (
	// MaxTemperature is the largest temperature, as in OpenAI's API.
	MaxTemperature = 2
	// MinPenalty and MaxPenalty bound the presence and frequency
	// penalties, as in OpenAI's API.
	MinPenalty = -2
	MaxPenalty = 2
)

// Validate reports the first setting in p outside its limits.
func (p Params) Validate() error {
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	penalty := func(v float32) bool { return finite(v) && v >= MinPenalty && v <= MaxPenalty }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0 || p.Temperature > MaxTemperature:
		return fmt.Errorf("sample: temperature must be from 0 to %d, got %v", MaxTemperature, p.Temperature)
	case !finite(p.TopP) || p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("sample: top_p must be in [0, 1], got %v", p.TopP)
	case p.TopK < 0:
		return fmt.Errorf("sample: top_k must be >= 0 (0 = off), got %d", p.TopK)
	case !penalty(p.PresencePenalty):
		return fmt.Errorf("sample: presence penalty must be from %d to %d, got %v", MinPenalty, MaxPenalty, p.PresencePenalty)
	case !penalty(p.FrequencyPenalty):
		return fmt.Errorf("sample: frequency penalty must be from %d to %d, got %v", MinPenalty, MaxPenalty, p.FrequencyPenalty)
	case !finite(p.PenaltyDecay) || p.PenaltyDecay < 0 || p.PenaltyDecay > 1:
		return fmt.Errorf("sample: penalty decay must be in [0, 1] (0 = no decay), got %v", p.PenaltyDecay)
	}
	return nil
}

// sanitize maps invalid settings to safe ones so a Sampler never misbehaves
// on bad input: non-finite or negative temperature is greedy, TopP is
// clamped to [0,1] (NaN keeps all), negative TopK is off, non-finite
// penalties are 0 and a decay outside (0,1] is 1.
func (p Params) sanitize() Params {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	if bad(p.Temperature) || p.Temperature < 0 {
		p.Temperature = 0
	}
	switch {
	case math.IsNaN(float64(p.TopP)) || p.TopP > 1:
		p.TopP = 1
	case p.TopP < 0:
		p.TopP = 0
	}
	if p.TopK < 0 {
		p.TopK = 0
	}
	if bad(p.PresencePenalty) {
		p.PresencePenalty = 0
	}
	if bad(p.FrequencyPenalty) {
		p.FrequencyPenalty = 0
	}
	if bad(p.PenaltyDecay) || p.PenaltyDecay <= 0 || p.PenaltyDecay > 1 {
		p.PenaltyDecay = 1
	}
	return p
}

// numBuckets is the size of the probability histogram used to find top-p
// and top-k candidates without sorting the whole vocabulary: a float32's
// bits shifted right by bucketShift (8 exponent bits and 3 mantissa bits).
const (
	bucketShift = 20
	numBuckets  = 1 << (31 - bucketShift)
)

// histogram sets s.hist and s.count: per bucket, the sum and the number
// of probs. Long rows are counted in softmaxChunks ranges at once and
// added in a fixed order. (The bucket sums only choose where filter starts
// gathering candidates; the cutoff comes from the sorted candidates, so
// their rounding does not reach the result.)
func (s *Sampler) histogram(probs []float32) {
	chunks := ranges(len(probs))
	if len(s.hists) < chunks {
		s.hists = make([]bucketSums, chunks)
	}
	forRanges(len(probs), func(c, lo, hi int) {
		h := &s.hists[c]
		clear(h.sum[:])
		clear(h.count[:])
		for _, p := range probs[lo:hi] {
			b := math.Float32bits(p) >> bucketShift
			h.sum[b] += float64(p)
			h.count[b]++
		}
	})
	s.hist, s.count = s.hists[0].sum, s.hists[0].count
	for c := 1; c < chunks; c++ {
		h := &s.hists[c]
		for b := range numBuckets {
			s.hist[b] += h.sum[b]
			s.count[b] += h.count[b]
		}
	}
}

// bucketSums is a histogram of probabilities: per bucket, their sum and
// their number.
type bucketSums struct {
	sum   [numBuckets]float64
	count [numBuckets]int32
}

// cand is a candidate token and its probability.
type cand struct {
	p  float32
	id int32
}

// Sampler draws tokens with fixed Params. It keeps the occurrence table for
// the penalties, the banned set and its own random number generator, so a
// given seed and sequence of logits always give the same tokens. A Sampler
// is not safe for concurrent use.
type Sampler struct {
	p      Params
	rng    *rand.Rand
	occ    []float64 // occurrence count per token; meaningful where inTable
	inTab  []bool
	seen   []int32 // tokens in the occurrence table, in first-seen order
	banned []bool
	bans   []int32

	// scratch, reused across calls
	x     []float32
	probs []float32
	cands []cand
	kept  []int32
	hist  [numBuckets]float64
	count [numBuckets]int32
	hists []bucketSums // per range of a long row (histogram)
}

// New returns a Sampler for a vocabulary of vocab tokens. It does not
// validate p (call Params.Validate for a clear error); invalid settings are
// replaced by safe ones as described on Params' fields (greedy for a bad
// temperature, no filtering for NaN top-p, and so on). Logits longer than
// vocab are accepted; the tables grow as needed.
func New(p Params, vocab int) *Sampler {
	p = p.sanitize()
	vocab = max(vocab, 0)
	return &Sampler{
		p:      p,
		rng:    rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)),
		occ:    make([]float64, vocab),
		inTab:  make([]bool, vocab),
		banned: make([]bool, vocab),
	}
}

// Greedy reports whether p always picks the most probable token (one of
// those tied for it): temperature 0, top-p 0 or top-k 1, without
// penalties. A token that is the only one within a small margin of the
// largest logit is then the pick whatever the random draw, so it can be
// chosen where the logits are (core.Model.ForwardGreedy).
func (p Params) Greedy() bool {
	p = p.sanitize()
	return (p.Temperature == 0 || p.TopP == 0 || p.TopK == 1) && p.PresencePenalty == 0 && p.FrequencyPenalty == 0
}

// Params returns the (sanitized) settings the Sampler uses.
func (s *Sampler) Params() Params { return s.p }

// grow makes the per-token tables at least n long.
func (s *Sampler) grow(n int) {
	if n <= len(s.occ) {
		return
	}
	s.occ = append(s.occ, make([]float64, n-len(s.occ))...)
	s.inTab = append(s.inTab, make([]bool, n-len(s.inTab))...)
	s.banned = append(s.banned, make([]bool, n-len(s.banned))...)
}

// Ban makes tokens impossible to sample (their logits become −∞), for
// example 0 (end of text) during chat. Negative ids are ignored. Bans last
// for the Sampler's life; Reset does not clear them.
func (s *Sampler) Ban(ids ...int32) {
	for _, id := range ids {
		if id < 0 {
			continue
		}
		s.grow(int(id) + 1)
		if !s.banned[id] {
			s.banned[id] = true
			s.bans = append(s.bans, id)
		}
	}
}

// Banned reports whether Ban was called with id.
func (s *Sampler) Banned(id int32) bool {
	return id >= 0 && int(id) < len(s.banned) && s.banned[id]
}

// Reset clears the occurrence table (as at the start of a new reply). The
// random number generator and the bans are kept.
func (s *Sampler) Reset() {
	for _, id := range s.seen {
		s.occ[id] = 0
		s.inTab[id] = false
	}
	s.seen = s.seen[:0]
}

// Occurrence returns the token's current (decayed) count in the occurrence
// table and whether the token is in it.
func (s *Sampler) Occurrence(id int32) (float64, bool) {
	if id < 0 || int(id) >= len(s.occ) {
		return 0, false
	}
	return s.occ[id], s.inTab[id]
}

// Sample applies the penalties, bans, top-p, top-k and temperature to a copy
// of logits (which it does not modify), draws a token, and records it in the
// occurrence table. It draws exactly one random number per call. It returns
// -1, recording nothing, when no token can be drawn: empty logits, or every
// token banned, NaN or −∞.
func (s *Sampler) Sample(logits []float32) int32 {
	return s.SampleU(logits, s.rng.Float64())
}

// SampleU is Sample with the uniform number u in [0,1) (a Plan's) instead
// of a fresh draw from the Sampler's generator.
func (s *Sampler) SampleU(logits []float32, u float64) int32 {
	tok := s.sample(logits, u)
	if tok >= 0 {
		s.record(tok)
	}
	return tok
}

// Pick returns the token Sample would draw from logits for the uniform
// number u, without recording it or drawing a number.
func (s *Sampler) Pick(logits []float32, u float64) int32 { return s.sample(logits, u) }

// Record counts tok in the occurrence table (after decaying it), as Sample
// does with the token it draws: for a token drawn elsewhere under a Plan.
func (s *Sampler) Record(tok int32) {
	if tok >= 0 {
		s.record(tok)
	}
}

// Plan is one draw described for a sampler that runs where the logits are
// (a GPU: kernels.Drawer): the settings as Sample applies them, the
// uniform number of this draw, and the penalties and bans as shifts of
// single logits.
type Plan struct {
	U       float64 // the uniform number in [0,1)
	InvTemp float64 // 1/temperature (1 for greedy settings)
	TopP    float64 // nucleus mass; ≥ 1 keeps every token (0 for greedy settings)
	TopK    int     // 0: off
	// Shifts lower logits: logit[ID] becomes float32(float64(logit[ID]) −
	// Sub), −∞ for a Sub of +∞ (a banned token); one entry an ID.
	Shifts []Shift
}

// Pick draws from logits under the plan the way a sampler that runs
// where the logits are must: the shifts applied (NaN counting as −∞),
// then the softmax, top-p, top-k and the draw of Sample with the plan's
// settings and uniform number. It is the Sampler's Pick for the plan's
// draw (TestPlan holds the two together), written out for other drawers
// to be checked against. It returns −1 when no token can be drawn.
func (p Plan) Pick(logits []float32) int32 {
	n := len(logits)
	if n == 0 || n > math.MaxInt32 {
		return -1
	}
	x := make([]float32, n)
	negInf := float32(math.Inf(-1))
	for i, v := range logits {
		if v != v {
			v = negInf
		}
		x[i] = v
	}
	for _, sh := range p.Shifts {
		switch {
		case sh.ID < 0 || int(sh.ID) >= n:
		case math.IsInf(sh.Sub, 1):
			x[sh.ID] = negInf
		default:
			x[sh.ID] = float32(float64(x[sh.ID]) - sh.Sub)
		}
	}
	return New(Params{}, n).drawFrom(x, p.InvTemp, p.TopP, p.TopK, p.U)
}

// Shift is one entry of Plan.Shifts.
type Shift struct {
	ID  int32
	Sub float64
}

// Plan draws the next uniform number from the Sampler's generator, as
// Sample would, and describes the draw. The caller then either Records the
// token drawn under the plan, or samples the logits with SampleU(logits,
// plan.U): both leave the Sampler as Sample would have.
func (s *Sampler) Plan() Plan {
	p := Plan{U: s.rng.Float64()}
	p.InvTemp, p.TopP, p.TopK = s.p.drawSettings()
	pres, freq := float64(s.p.PresencePenalty), float64(s.p.FrequencyPenalty)
	for _, id := range s.seen {
		if sub := pres + s.occ[id]*freq; sub != 0 && !s.banned[id] {
			p.Shifts = append(p.Shifts, Shift{id, sub})
		}
	}
	for _, id := range s.bans {
		p.Shifts = append(p.Shifts, Shift{id, math.Inf(1)})
	}
	return p
}

// record decays the occurrence table and adds one to tok.
func (s *Sampler) record(tok int32) {
	if d := float64(s.p.PenaltyDecay); d != 1 {
		for _, id := range s.seen {
			s.occ[id] *= d
		}
	}
	s.grow(int(tok) + 1)
	if !s.inTab[tok] {
		s.inTab[tok] = true
		s.seen = append(s.seen, tok)
	}
	s.occ[tok]++
}

// penalize copies logits into the scratch buffer with penalties and bans
// applied and NaN replaced by −∞.
func (s *Sampler) penalize(logits []float32) []float32 {
	n := len(logits)
	if cap(s.x) < n {
		s.x = make([]float32, n)
	}
	x := s.x[:n]
	negInf := float32(math.Inf(-1))
	for i, v := range logits {
		if v != v {
			v = negInf
		}
		x[i] = v
	}
	pres, freq := float64(s.p.PresencePenalty), float64(s.p.FrequencyPenalty)
	for _, id := range s.seen {
		if int(id) < n {
			x[id] = float32(float64(x[id]) - (pres + s.occ[id]*freq))
		}
	}
	for _, id := range s.bans {
		if int(id) < n {
			x[id] = negInf
		}
	}
	return x
}

// sample picks a token for the uniform draw u in [0,1) without touching the
// occurrence table.
func (s *Sampler) sample(logits []float32, u float64) int32 {
	n := len(logits)
	if n == 0 || n > math.MaxInt32 {
		return -1
	}
	invT, topP, topK := s.p.drawSettings()
	return s.drawFrom(s.penalize(logits), invT, topP, topK, u)
}

// drawSettings returns the inverse temperature, top-p and top-k a draw
// applies: temperature 0 is temperature 1 with top-p 0.
func (p Params) drawSettings() (invT, topP float64, topK int) {
	if p.Temperature == 0 {
		return 1, 0, p.TopK
	}
	return 1 / float64(p.Temperature), float64(p.TopP), p.TopK
}

// drawFrom draws from x (logits with the penalties and bans applied) for
// the uniform number u: softmax, top-p, top-k (off at or beyond len(x)),
// then the draw with weights p^invT.
func (s *Sampler) drawFrom(x []float32, invT, topP float64, topK int, u float64) int32 {
	n := len(x)
	if cap(s.probs) < n {
		s.probs = make([]float32, n)
	}
	probs := s.probs[:n]
	if !softmax(probs, x) {
		return -1
	}
	if topK >= n {
		topK = 0
	}
	if topP >= 1 && topK == 0 {
		return drawAll(probs, invT, u)
	}
	return drawKept(probs, s.filter(probs, topP, topK), invT, u)
}

// filter returns, in ascending id order, the tokens that survive top-p
// (active when topP < 1) and top-k (active when topK > 0). It finds the
// cutoff without sorting the vocabulary: a histogram over float32 bit
// patterns (monotone in the probability, so equal probabilities share a
// bucket) locates the smallest set of top buckets that must contain every
// survivor, and only those candidates are sorted. The result equals a full
// sort by (probability descending, id ascending).
func (s *Sampler) filter(probs []float32, topP float64, topK int) []int32 {
	s.histogram(probs)
	lowest := numBuckets // lowest nonempty bucket holding a nonzero probability
	for b := range numBuckets {
		if s.count[b] > 0 && (b > 0 || s.hist[0] > 0) {
			lowest = b
			break
		}
	}
	if lowest == numBuckets { // no nonzero probability; callers exclude this
		lowest = 0
	}
	// Start from the highest bucket where the bucket sums reach topP (or the
	// counts reach topK, if that is higher).
	start := 0
	if topP < 1 {
		var cum float64
		for b := numBuckets - 1; b >= 0; b-- {
			if s.count[b] == 0 {
				continue
			}
			cum += s.hist[b]
			if cum >= topP {
				start = b
				break
			}
		}
	}
	if topK > 0 {
		var c int
		for b := numBuckets - 1; b >= 0; b-- {
			if s.count[b] == 0 {
				continue
			}
			c += int(s.count[b])
			if c >= topK {
				start = max(start, b)
				break
			}
		}
	}
	for {
		cands := s.gather(probs, start)
		kept, done := cut(cands, topP, topK, start <= lowest)
		if done {
			s.kept = s.kept[:0]
			for _, c := range kept {
				s.kept = append(s.kept, c.id)
			}
			slices.Sort(s.kept)
			return s.kept
		}
		// Rounding made the bucket sums reach topP before the sorted sum
		// did: widen to the next nonempty bucket below.
		start--
		for start > lowest && s.count[start] == 0 {
			start--
		}
	}
}

// gather collects the tokens whose bucket is >= start, sorted by probability
// descending, then id ascending.
func (s *Sampler) gather(probs []float32, start int) []cand {
	c := s.cands[:0]
	for i, p := range probs {
		if int(math.Float32bits(p)>>bucketShift) >= start {
			c = append(c, cand{p, int32(i)})
		}
	}
	slices.SortFunc(c, func(a, b cand) int {
		if a.p != b.p {
			return cmp.Compare(b.p, a.p)
		}
		return cmp.Compare(a.id, b.id)
	})
	s.cands = c
	return c
}

// cut applies top-p and top-k to cands, a prefix of the vocabulary sorted by
// (probability descending, id ascending) that holds every token tied with
// its last element. complete says the prefix holds every nonzero
// probability. It reports done=false when the prefix is too short to decide.
func cut(cands []cand, topP float64, topK int, complete bool) (kept []cand, done bool) {
	if len(cands) == 0 {
		return nil, complete
	}
	n := len(cands)
	if topP < 1 {
		var cum float64
		j := -1
		for i, c := range cands {
			cum += float64(c.p)
			if cum >= topP {
				j = i
				break
			}
		}
		switch {
		case j >= 0:
			cutoff := cands[j].p
			n = j + 1
			for n < len(cands) && cands[n].p >= cutoff {
				n++
			}
		case topK > 0 && len(cands) >= topK:
			// The cutoff lies beyond the first topK tokens, so top-k decides.
		case !complete:
			return nil, false
		}
	}
	if topK > 0 && n > topK {
		n = topK
	}
	// Zero probabilities can never be drawn.
	for n > 0 && cands[n-1].p == 0 {
		n--
	}
	return cands[:n], true
}

// weight is a surviving probability raised to 1/T relative to the largest
// probability pmax (which keeps the largest weight at 1, so a small
// temperature cannot underflow every weight).
func weight(p float32, pmax float64, invT float64) float64 {
	if invT == 1 {
		return float64(p)
	}
	return math.Pow(float64(p)/pmax, invT)
}

// drawAll draws from every token with a nonzero probability.
func drawAll(probs []float32, invT float64, u float64) int32 {
	var pmax float32
	for _, p := range probs {
		pmax = max(pmax, p)
	}
	var total float64
	for _, p := range probs {
		if p > 0 {
			total += weight(p, float64(pmax), invT)
		}
	}
	target := u * total
	var cum float64
	last := int32(-1)
	for i, p := range probs {
		if p > 0 {
			cum += weight(p, float64(pmax), invT)
			last = int32(i)
			if cum > target {
				return last
			}
		}
	}
	return last
}

// drawKept draws from the kept tokens (ascending ids).
func drawKept(probs []float32, kept []int32, invT float64, u float64) int32 {
	if len(kept) == 0 {
		return -1
	}
	var pmax float32
	for _, id := range kept {
		pmax = max(pmax, probs[id])
	}
	var total float64
	for _, id := range kept {
		total += weight(probs[id], float64(pmax), invT)
	}
	target := u * total
	var cum float64
	for _, id := range kept {
		cum += weight(probs[id], float64(pmax), invT)
		if cum > target {
			return id
		}
	}
	return kept[len(kept)-1]
}

// softmaxChunks is how many ranges softmax splits a long row into, and
// softmaxParallel the shortest row it splits.
const (
	softmaxChunks   = 8
	softmaxParallel = 1 << 14
)

// ranges is how many ranges forRanges splits a row of n into.
func ranges(n int) int {
	if n >= softmaxParallel {
		return softmaxChunks
	}
	return 1
}

// forRanges calls fn(c, lo, hi) for the ranges(n) fixed ranges [lo, hi)
// of [0, n), each on its own goroutine when there are several.
func forRanges(n int, fn func(c, lo, hi int)) {
	chunks := ranges(n)
	if chunks == 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for c := 1; c < chunks; c++ {
		wg.Go(func() { fn(c, c*n/chunks, (c+1)*n/chunks) })
	}
	fn(0, 0, n/chunks)
	wg.Wait()
}

// expRange sets dst[i] = e^(x[i]−m) in float32 and returns their sum,
// taken in float64 as four interleaved partial sums (which break the
// loop-carried dependency of one running sum) added pairwise.
func expRange(dst, x []float32, m float64, tab *[expTableSize]float64) float64 {
	// The blocks of four go to the vector form where there is one
	// (expRangeFast: the same operations, so the same bits).
	s, i := expRangeFast(dst, x, m, tab)
	s0, s1, s2, s3 := s[0], s[1], s[2], s[3]
	for ; i+4 <= len(x); i += 4 {
		e0 := expNeg(float64(x[i])-m, tab)
		e1 := expNeg(float64(x[i+1])-m, tab)
		e2 := expNeg(float64(x[i+2])-m, tab)
		e3 := expNeg(float64(x[i+3])-m, tab)
		dst[i], dst[i+1], dst[i+2], dst[i+3] = e0, e1, e2, e3
		s0 += float64(e0)
		s1 += float64(e1)
		s2 += float64(e2)
		s3 += float64(e3)
	}
	for ; i < len(x); i++ {
		e := expNeg(float64(x[i])-m, tab)
		dst[i] = e
		s0 += float64(e)
	}
	return (s0 + s1) + (s2 + s3)
}

// softmax writes softmax(x) to dst in float32 and reports whether any token
// has a nonzero probability (false when every x is −∞). −∞ entries get 0; if
// some entries are +∞ they share all the probability equally.
func softmax(dst, x []float32) bool {
	n, chunks := len(x), ranges(len(x))
	var maxes [softmaxChunks]float32
	forRanges(n, func(c, lo, hi int) {
		m, i := maxFast(x[lo:hi]) // the vector form, where there is one
		for _, v := range x[lo+i : hi] {
			if v > m {
				m = v
			}
		}
		maxes[c] = m
	})
	m := float32(math.Inf(-1))
	for _, v := range maxes[:chunks] {
		m = max(m, v)
	}
	if math.IsInf(float64(m), -1) {
		return false
	}
	if math.IsInf(float64(m), 1) {
		var k int
		for _, v := range x {
			if v == m {
				k++
			}
		}
		share := 1 / float32(k)
		for i, v := range x {
			dst[i] = 0
			if v == m {
				dst[i] = share
			}
		}
		return true
	}
	mf := float64(m)
	// The exponentials run in softmaxChunks fixed ranges, each with four
	// partial sums, added in a fixed order: the result does not depend on
	// how many cores ran them. (Measured on the GPU machine's host, 65,536
	// logits: 505–569 µs as one loop, 215–240 µs in ranges on goroutines,
	// whether GOMAXPROCS is 1, 4 or 16; BenchmarkSoftmax.)
	var sums [softmaxChunks]float64
	tab := expTable()
	forRanges(n, func(c, lo, hi int) {
		sums[c] = expRange(dst[lo:hi], x[lo:hi], mf, &tab)
	})
	var sum float64
	for _, v := range sums[:chunks] {
		sum += v
	}
	inv := 1 / sum
	forRanges(n, func(_, lo, hi int) {
		for i := lo + scaleFast(dst[lo:hi], inv); i < hi; i++ {
			dst[i] = float32(float64(dst[i]) * inv)
		}
	})
	return true
}

// expTableSize is the number of table entries per octave used by expNeg.
const expTableSize = 32

// expTable returns 2^(j/32) for j = 0..31. It is rebuilt per softmax call
// (32 calls to math.Exp2) instead of living in a package variable.
func expTable() [expTableSize]float64 {
	var t [expTableSize]float64
	for j := range t {
		t[j] = math.Exp2(float64(j) / expTableSize)
	}
	return t
}

// expNeg returns e^d rounded to float32 for d <= 0 (d may be −∞), given
// tab = expTable(). It writes d = (32q + j)·ln2/32 + r with |r| <= ln2/64,
// so e^d = 2^q · 2^(j/32) · e^r, and evaluates e^r with its degree-4 Taylor
// polynomial in float64 (truncation error below 2e-12 relative). The result
// is within one float32 ulp of math.Exp (TestSoftmax checks this).
func expNeg(d float64, tab *[expTableSize]float64) float32 {
	if d < -104 { // e^-104 is below the smallest float32 denormal
		return 0
	}
	const (
		scale = expTableSize / math.Ln2
		step  = math.Ln2 / expTableSize
	)
	// Round d·scale to an integer; truncating d·scale − 0.5 toward zero does
	// that for d <= 0 without a call to math.Floor.
	k := int64(d*scale - 0.5)
	r := d - float64(k)*step
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24))))
	// k = 32q + j with 0 <= j < 32 (arithmetic shift floors); add q to the
	// exponent of 2^(j/32), which stays a normal float64 for q >= -151.
	t := math.Float64frombits(math.Float64bits(tab[k&(expTableSize-1)]) + uint64(k>>5)<<52)
	return float32(p * t)
}

// Greedy returns the index of the largest logit, the lowest index among
// ties. NaN entries are ignored. It returns -1 for empty logits or when every
// entry is NaN.
func Greedy(logits []float32) int32 {
	// Two branch-light passes (the maximum, with four independent running
	// maxima, then its first index) beat one pass that tracks the index:
	// this runs once per token on 65536 logits.
	inf := float32(math.Inf(-1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	i := 0
	for ; i+4 <= len(logits); i += 4 {
		x := logits[i : i+4 : i+4]
		if x[0] > m0 {
			m0 = x[0]
		}
		if x[1] > m1 {
			m1 = x[1]
		}
		if x[2] > m2 {
			m2 = x[2]
		}
		if x[3] > m3 {
			m3 = x[3]
		}
	}
	for ; i < len(logits); i++ {
		if logits[i] > m0 {
			m0 = logits[i]
		}
	}
	m := max(m0, m1, m2, m3) // NaN never got in: comparisons with NaN are false
	for i, v := range logits {
		if v == m { // when m is −Inf this finds the first −Inf, skipping NaNs
			return int32(i)
		}
	}
	return -1 // empty, or every entry NaN
}
