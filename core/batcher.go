package core

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// Batcher runs the one-token steps of the sessions decoding through it as
// steps of one Batch (continuous batching): a session enters when it starts
// generating and exits when it stops, between steps, and each step advances
// every session that has submitted its next token. Sessions submit from
// their own goroutines and wait for their own result; the Batcher's runner
// goroutine runs a step once every member has submitted, or once a short
// wait for the rest has ended (some member is slow to submit, say because
// its client reads slowly, or it samples a row on the host), and every
// member gets its own row of logits. A member that has not submitted when
// a step runs is parked — its state copied out of the batch — and rejoins
// with its next submission, so a slow session never holds the others back
// nor misses a token.
//
// Prefills do not go through the Batcher: they run as ordinary Forward
// calls between its steps.
type Batcher struct {
	m    *Model
	b    *Batch
	wait time.Duration

	mu      sync.Mutex
	cond    *sync.Cond   // a step ended, a member exited, or the Batcher closed
	work    *sync.Cond   // the runner's: a submission, an exit, the wait's end
	running bool         // a step is in flight: the Batch may not change
	members []*BatchSlot // entered and not exited
	nsub    int          // members that submitted for the next step
	timer   *time.Timer  // wakes the runner when the wait for stragglers ends
	since   time.Time    // first submission for the next step
	last    time.Duration
	ended   time.Time // when the last step ended
	logits  []float32
	picks   []int32 // [token, flag] a member (StepSample on a kernels.Drawer)
	closed  bool
	stopped chan struct{} // closed when the runner returns
	stats   BatcherStats
}

// BatcherStats counts what a Batcher has done since it was made.
type BatcherStats struct {
	Steps  int64         // steps run
	Rows   int64         // members advanced, summed over the steps
	Drawn  int64         // rows whose token the backend drew (Batch.StepDraw)
	Parked int64         // members parked because they had not submitted
	Early  int64         // steps run when the wait for stragglers ended
	Busy   time.Duration // time in the steps themselves
	Waited time.Duration // from each step's first submission to its start
	// From the end of each step to the first submission for the next and
	// to that step's start (steps that follow a step only).
	FirstBack, LastBack time.Duration
	Joins               int64         // members joined (entering or rejoining)
	Joining             time.Duration // time in Batch.Join, the lock held
}

// Stats returns the Batcher's counters.
func (bt *Batcher) Stats() BatcherStats {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return bt.stats
}

// BatchSlot is a session's membership in a Batcher.
type BatchSlot struct {
	bt        *Batcher
	st        *State
	mb        *Member // nil while parked (not in the Batch)
	submitted bool
	tok       int32
	out       []float32
	plan      *sample.Plan // StepSample's draw, nil for Step
	drawn     int32        // the token the device drew under plan, −1 if none
	err       error
	ready     chan struct{} // the runner's word that the submission is done
}

// DefaultBatchWait is the shortest a step waits for members that have not
// submitted their next token once another has. The wait is longer after
// long steps: half the previous step's time, since members that sample
// on the host, after a step, need longer when the steps are slow (a CPU).
const DefaultBatchWait = 2 * time.Millisecond

// NewBatcher returns a Batcher for up to capacity sessions at once; wait is
// the shortest wait for stragglers (0: DefaultBatchWait), opts configure
// its Batch. Close stops it.
func (m *Model) NewBatcher(capacity int, wait time.Duration, opts BatchOptions) (*Batcher, error) {
	b, err := m.NewBatch(capacity, opts)
	if err != nil {
		return nil, err
	}
	if wait <= 0 {
		wait = DefaultBatchWait
	}
	bt := &Batcher{m: m, b: b, wait: wait, logits: make([]float32, capacity*m.cfg.Vocab), stopped: make(chan struct{})}
	bt.cond = sync.NewCond(&bt.mu)
	bt.work = sync.NewCond(&bt.mu)
	go bt.run()
	return bt, nil
}

// Enter makes st (a state of the Batcher's model) a member. It joins the
// Batch with its first Step.
func (bt *Batcher) Enter(st *State) (*BatchSlot, error) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.closed {
		return nil, ErrClosed
	}
	if st == nil || st.m != bt.m {
		return nil, errors.New("batcher: enter: not a state of this model")
	}
	s := &BatchSlot{bt: bt, st: st, ready: make(chan struct{}, 1)}
	bt.members = append(bt.members, s)
	return s, nil
}

// Step feeds tok to the member's state and puts the logits after it into
// logits (the vocabulary's size), as Model.Forward would, advancing it in
// a step shared with the other members. ctx is checked before the token is
// submitted only: a step once run is never undone.
func (s *BatchSlot) Step(ctx context.Context, tok int32, logits []float32) error {
	return s.step(ctx, tok, logits, nil)
}

// StepSample is Step followed by smp's draw from the logits: it returns the
// token smp.Sample would draw, recorded in smp, leaving smp as Sample
// would. On a backend that draws where the logits are (kernels.Drawer),
// a step in which every member samples this way draws all their tokens
// there (Batch.StepDraw), and logits receive the row only when the host
// must decide; otherwise logits receive the row and smp samples it. It
// returns −1 when no token can be drawn; logits then hold the row.
func (s *BatchSlot) StepSample(ctx context.Context, tok int32, logits []float32, smp *sample.Sampler) (int32, error) {
	plan := smp.Plan()
	if err := s.step(ctx, tok, logits, &plan); err != nil {
		return -1, err
	}
	if s.drawn >= 0 {
		smp.Record(s.drawn)
		return s.drawn, nil
	}
	return smp.SampleU(logits, plan.U), nil
}

func (s *BatchSlot) step(ctx context.Context, tok int32, logits []float32, plan *sample.Plan) error {
	bt := s.bt
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(logits) != bt.m.cfg.Vocab {
		return errors.New("batcher: step: logits buffer is not the vocabulary's size")
	}
	if tok < 0 || int(tok) >= bt.m.cfg.Vocab {
		return errors.New("batcher: step: token outside the vocabulary")
	}
	bt.mu.Lock()
	// Join (or rejoin after being parked) between steps, when a slot is free.
	for s.mb == nil {
		if bt.closed {
			bt.mu.Unlock()
			return ErrClosed
		}
		if !bt.running && bt.b.Len() < bt.b.Cap() {
			t := time.Now()
			mb, err := bt.b.Join(s.st)
			bt.stats.Joins++
			bt.stats.Joining += time.Since(t)
			if err != nil {
				bt.mu.Unlock()
				return err
			}
			s.mb = mb
			break
		}
		bt.cond.Wait()
	}
	if bt.closed {
		bt.mu.Unlock()
		return ErrClosed
	}
	s.tok, s.out, s.plan, s.drawn, s.submitted, s.err = tok, logits, plan, -1, true, nil
	bt.nsub++
	if bt.nsub == 1 {
		bt.startWait()
	}
	if bt.nsub == bt.b.Len() {
		bt.work.Signal()
	}
	bt.mu.Unlock()
	<-s.ready
	return s.err
}

// run is the runner goroutine: it runs a step whenever one is due (every
// member submitted, or the wait for the rest ended) until the Batcher
// closes, and then fails the submissions still waiting.
func (bt *Batcher) run() {
	defer close(bt.stopped)
	bt.mu.Lock()
	defer bt.mu.Unlock()
	for {
		for !bt.closed && !bt.due() {
			bt.work.Wait()
		}
		if bt.closed {
			for _, s := range bt.members {
				if s.submitted {
					s.submitted, s.err = false, ErrClosed
					s.ready <- struct{}{}
				}
			}
			bt.nsub = 0
			return
		}
		bt.runStep()
	}
}

// due reports whether a step should run now. The caller holds the lock.
func (bt *Batcher) due() bool {
	if bt.nsub == 0 {
		return false
	}
	return bt.nsub == bt.b.Len() || time.Since(bt.since) >= bt.waitFor()
}

// waitFor is how long a step waits for stragglers: the Batcher's wait, or
// half the previous step's time when that is longer.
func (bt *Batcher) waitFor() time.Duration { return max(bt.wait, bt.last/2) }

// runStep runs one step for the submitted members, parking the others
// first, and hands each its result. It is called with the lock held and
// returns with it held; the lock is released while the step runs.
func (bt *Batcher) runStep() {
	bt.stats.Waited += time.Since(bt.since)
	if !bt.ended.IsZero() {
		bt.stats.FirstBack += bt.since.Sub(bt.ended)
		bt.stats.LastBack += time.Since(bt.ended)
	}
	if bt.nsub < bt.b.Len() {
		bt.stats.Early++
	}
	if bt.timer != nil {
		bt.timer.Stop()
		bt.timer = nil
	}
	var err error
	for _, s := range bt.members {
		if s.mb != nil && !s.submitted {
			if e := s.mb.Leave(); e != nil && err == nil {
				err = e
			}
			s.mb = nil
			bt.stats.Parked++
		}
	}
	ms := bt.b.Members()
	slots := make([]*BatchSlot, len(ms))
	tokens := make([]int32, len(ms))
	for _, s := range bt.members {
		if s.mb != nil && s.submitted {
			slots[s.mb.Slot()], tokens[s.mb.Slot()] = s, s.tok
			s.submitted = false
		}
	}
	bt.nsub = 0
	bt.running = true
	n := len(ms)
	V := bt.m.cfg.Vocab
	// The tokens are drawn on the device when every member samples
	// through StepSample and the backend can draw.
	var plans []sample.Plan
	if _, ok := bt.m.be.(kernels.Drawer); ok {
		plans = make([]sample.Plan, 0, n)
		for _, s := range slots {
			if s == nil || s.plan == nil {
				plans = nil
				break
			}
			plans = append(plans, *s.plan)
		}
	}
	if err == nil {
		bt.mu.Unlock()
		start := time.Now()
		if plans != nil {
			if cap(bt.picks) < 2*n {
				bt.picks = make([]int32, 2*n)
			}
			err = bt.b.StepDraw(context.Background(), tokens, plans, bt.picks[:2*n], bt.logits[:n*V])
		} else {
			err = bt.b.Step(context.Background(), tokens, bt.logits[:n*V], nil)
		}
		bt.last = time.Since(start)
		bt.mu.Lock()
		bt.ended = time.Now()
		bt.stats.Busy += bt.last
		if err == nil {
			bt.stats.Steps++
			bt.stats.Rows += int64(n)
		}
	}
	bt.running = false
	for i, s := range slots {
		if s == nil {
			continue
		}
		switch {
		case err != nil:
		case plans != nil && bt.picks[2*i+1] == 0:
			s.drawn = bt.picks[2*i]
			bt.stats.Drawn++
		default:
			copy(s.out, bt.logits[i*V:(i+1)*V])
		}
		s.err = err
		s.ready <- struct{}{}
	}
	if bt.nsub > 0 { // submissions that came during the step wait from now
		bt.startWait()
	}
	bt.cond.Broadcast()
}

// startWait starts the wait for stragglers at the first submission for the
// next step: the timer wakes the runner when it ends. The caller holds the
// lock.
func (bt *Batcher) startWait() {
	bt.since = time.Now()
	if bt.timer != nil {
		bt.timer.Stop()
	}
	bt.timer = time.AfterFunc(bt.waitFor(), func() {
		bt.mu.Lock()
		bt.work.Signal()
		bt.mu.Unlock()
	})
}

// Exit ends the membership: the member's state (its State, from Enter) then
// holds everything its steps fed.
func (s *BatchSlot) Exit() error {
	bt := s.bt
	bt.mu.Lock()
	defer bt.mu.Unlock()
	for bt.running {
		bt.cond.Wait()
	}
	var err error
	if s.mb != nil {
		err = s.mb.Leave()
		s.mb = nil
	}
	if s.submitted { // never stepped (only after an error)
		s.submitted = false
		bt.nsub--
	}
	for i, x := range bt.members {
		if x == s {
			bt.members = append(bt.members[:i], bt.members[i+1:]...)
			break
		}
	}
	bt.cond.Broadcast()
	bt.work.Signal() // the others may all have submitted now
	return err
}

// Close stops the runner and frees the batch. Members must have exited;
// a submission still waiting fails with ErrClosed.
func (bt *Batcher) Close() {
	bt.mu.Lock()
	for bt.running {
		bt.cond.Wait()
	}
	if bt.closed {
		bt.mu.Unlock()
		return
	}
	bt.closed = true
	if bt.timer != nil {
		bt.timer.Stop()
		bt.timer = nil
	}
	bt.work.Signal()
	bt.cond.Broadcast()
	bt.mu.Unlock()
	<-bt.stopped
	bt.mu.Lock()
	bt.b.Close()
	bt.mu.Unlock()
}
