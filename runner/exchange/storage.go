package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
)

// DefaultWait bounds how long an index waits for the others' partials of
// one round: long enough for a peer pod to be scheduled, start and compute
// its share of a data pass, short enough that a lost index fails the stage
// rather than holding the others' nodes for good.
const DefaultWait = 30 * time.Minute

// maxPoll is the longest pause between two looks for the others' partials.
const maxPoll = time.Second

// ErrDone is Gather's error when the stage's result appeared while it
// waited: another index finished the stage (this one is a retry that came
// late), so there is nothing left to exchange.
var ErrDone = errors.New("the stage's result was published while this index waited for the others")

// Storage is index Index of an Indexed Job of Of pods meeting in object
// storage under Prefix (the stage's cache-key directory): for each round,
// every index writes its partial once as <Prefix>/<round>/<i>-of-<N> and
// then its sha256 as <i>-of-<N>.sha256 (the commit: a reader trusts only a
// partial whose digest it has, and reads it verified), then waits for the
// others'. Partials are content-addressed under the stage's cache key, so
// a retried index finds its own partial and does not recompute it.
type Storage struct {
	Client *storage.Client
	Prefix string
	Index  int
	Of     int
	// Wait bounds one round's wait for the others (DefaultWait when 0).
	Wait time.Duration
	// Done is a URI (the stage's result.json) whose existence ends the
	// exchange with ErrDone.
	Done string
	// Poll is the first pause between looks (doubling up to maxPoll;
	// 50 ms when 0): short rounds lose little to polling, long ones make
	// a request per missing index a second.
	Poll time.Duration
	// Log, when set, gets a line per round: bytes shared, and seconds
	// spent writing, reading and waiting for the others (the exchange's
	// cost, apart from the wait).
	Log *slog.Logger

	mu     sync.Mutex
	rounds []string // gathered, for Delete
}

// Shards is the index count.
func (s *Storage) Shards() int { return s.Of }

// Mine is this index.
func (s *Storage) Mine() []int { return []int{s.Index} }

// PartURI is where index i's partial of round is.
func (s *Storage) PartURI(round string, i int) string {
	return pipeline.JoinURI(s.Prefix, round, fmt.Sprintf("%d-of-%d", i, s.Of))
}

// digestURI is where the digest of index i's partial of round is.
func (s *Storage) digestURI(round string, i int) string {
	return pipeline.JoinURI(s.Prefix, round, fmt.Sprintf("%d-of-%d.sha256", i, s.Of))
}

// Shared reads this index's partial of round if an earlier attempt
// committed it.
func (s *Storage) Shared(ctx context.Context, round string) (map[int][]byte, error) {
	b, ok, err := s.read(ctx, round, s.Index)
	if err != nil || !ok {
		return nil, err
	}
	return map[int][]byte{s.Index: b}, nil
}

// Gather writes this index's partial and waits for every other's.
func (s *Storage) Gather(ctx context.Context, round string, mine map[int][]byte) ([][]byte, error) {
	start := time.Now()
	if err := s.write(ctx, round, mine[s.Index]); err != nil {
		return nil, err
	}
	wrote := time.Since(start)
	var reading time.Duration
	s.mu.Lock()
	s.rounds = append(s.rounds, round)
	s.mu.Unlock()
	wait := s.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	deadline := time.Now().Add(wait)
	pause := s.Poll
	if pause <= 0 {
		pause = 50 * time.Millisecond
	}
	all := make([][]byte, s.Of)
	have := make([]bool, s.Of)
	all[s.Index], have[s.Index] = mine[s.Index], true
	for {
		var missing []int
		for i := range all {
			if have[i] {
				continue
			}
			t0 := time.Now()
			b, ok, err := s.read(ctx, round, i)
			if err != nil {
				return nil, err
			}
			if ok {
				reading += time.Since(t0)
				all[i], have[i] = b, true
				continue
			}
			missing = append(missing, i)
		}
		if len(missing) == 0 {
			s.logRound(round, all, wrote, reading, time.Since(start))
			return all, nil
		}
		if done, err := s.done(ctx); err != nil || done {
			return nil, errors.Join(err, ErrDone)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("round %s: index %s of %d did not share its partial statistics within %s (under %s)",
				round, joinInts(missing), s.Of, wait, s.Prefix)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("round %s: waiting for index %s of %d: %w", round, joinInts(missing), s.Of, ctx.Err())
		case <-time.After(min(pause, time.Until(deadline)+time.Millisecond)):
		}
		pause = min(2*pause, maxPoll)
	}
}

// Hand shares this index's partial of round with index 0, which
// assembles: on index 0 it waits for every other index's (as Gather) and
// returns them all in index order; on the others it commits the partial
// and returns nil at once, with nothing to wait for. It is the layer
// workers' one round (spec.parallelism.layers): each index's partial is
// a piece of the model, not a statistic every index needs.
func (s *Storage) Hand(ctx context.Context, round string, mine []byte) ([][]byte, error) {
	if s.Index == 0 {
		return s.Gather(ctx, round, map[int][]byte{0: mine})
	}
	start := time.Now()
	if err := s.write(ctx, round, mine); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.Info("partial handed to index 0", "round", round, "index", s.Index, "of", s.Of, "bytes", len(mine), "writeSeconds", time.Since(start).Seconds())
	}
	return nil, nil
}

// write commits b as this index's partial of round: the bytes, then their
// digest. A retry that finds either already there accepts it only if it
// holds the same bytes: a partial is a pure function of the stage's inputs.
func (s *Storage) write(ctx context.Context, round string, b []byte) error {
	part := s.PartURI(round, s.Index)
	digest := storage.Digest(b)
	if _, err := s.Client.WriteBytes(ctx, part, b); errors.Is(err, storage.ErrExists) {
		if _, _, err := s.Client.ReadAll(ctx, part, digest); err != nil {
			return fmt.Errorf("round %s: index %d's partial is already at %s with other content than this attempt computed: %w", round, s.Index, part, err)
		}
	} else if err != nil {
		return err
	}
	_, err := s.Client.WriteBytes(ctx, s.digestURI(round, s.Index), []byte(digest))
	if errors.Is(err, storage.ErrExists) {
		theirs, _, rerr := s.Client.ReadAll(ctx, s.digestURI(round, s.Index), "")
		if rerr != nil {
			return rerr
		}
		if string(theirs) != digest {
			return fmt.Errorf("round %s: index %d's partial was committed as %s, this attempt computed %s", round, s.Index, theirs, digest)
		}
		return nil
	}
	return err
}

// read returns index i's partial of round if it is committed, verified
// against its digest: a partial whose bytes do not match is refused.
func (s *Storage) read(ctx context.Context, round string, i int) ([]byte, bool, error) {
	part := s.PartURI(round, i)
	digest, _, err := s.Client.ReadAll(ctx, s.digestURI(round, i), "")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, _, err := s.Client.ReadAll(ctx, part, string(digest))
	if errors.Is(err, storage.ErrNotFound) {
		// Committed, then deleted between the two reads: the publishing
		// index is done with the round (Gather then finds the result).
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("round %s: index %d's partial %s is refused: %w", round, i, part, err)
	}
	return b, true, nil
}

func (s *Storage) logRound(round string, all [][]byte, wrote, reading, total time.Duration) {
	if s.Log == nil {
		return
	}
	n := 0
	for _, b := range all {
		n += len(b)
	}
	s.Log.Info("shards exchanged", "round", round, "index", s.Index, "of", s.Of, "bytes", n,
		"writeSeconds", wrote.Seconds(), "readSeconds", reading.Seconds(), "waitSeconds", (total - wrote - reading).Seconds())
}

func (s *Storage) done(ctx context.Context) (bool, error) {
	if s.Done == "" {
		return false, nil
	}
	return s.Client.Exists(ctx, s.Done)
}

// Delete removes every index's partials of the rounds this one gathered:
// run by the index that publishes the stage, once its result is written
// (an index still waiting then finds the result and stops, ErrDone).
func (s *Storage) Delete(ctx context.Context) error {
	s.mu.Lock()
	rounds := append([]string(nil), s.rounds...)
	s.mu.Unlock()
	var errs []error
	for _, r := range rounds {
		for i := range s.Of {
			part := s.PartURI(r, i)
			errs = append(errs, s.Client.Delete(ctx, s.digestURI(r, i)), s.Client.Delete(ctx, part))
		}
	}
	return errors.Join(errs...)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
