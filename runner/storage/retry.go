package storage

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"
)

// Retry bounds how transient failures are retried: Attempts calls in all,
// waiting Initial, then twice as long each time up to Max (each wait is
// jittered down by up to half so that many pods do not retry in step).
// The SDKs retry some failures inside one call as well.
type Retry struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

// DefaultRetry is what a zero Client uses: 5 attempts over about 3 s.
var DefaultRetry = Retry{Attempts: 5, Initial: 200 * time.Millisecond, Max: 3 * time.Second}

func (r Retry) orDefault() Retry {
	if r.Attempts <= 0 {
		return DefaultRetry
	}
	return r
}

func (r Retry) delay(attempt int) time.Duration {
	d := r.Initial
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// do runs fn until it succeeds, fails with a non-transient error, the
// attempts run out or ctx ends. fn gets the attempt number, from 1.
func (c *Client) do(ctx context.Context, op, uri string, fn func(attempt int) error) error {
	r := c.Retry.orDefault()
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || KindOf(err) != KindTransient {
			return err
		}
		if attempt >= r.Attempts {
			return giveUp(err, attempt, c.unseekable)
		}
		d := r.delay(attempt)
		c.logger().Warn("storage: transient failure, retrying",
			"op", op, "uri", uri, "attempt", attempt, "of", r.Attempts, "wait", d, "err", err)
		select {
		case <-ctx.Done():
			return giveUp(err, attempt, false)
		case <-time.After(d):
		}
	}
}

// giveUp turns the last transient error into a plain failure: the stage as
// a whole may still be retried by its Job. unseekable says the single
// attempt was all a stream allowed.
func giveUp(err error, attempts int, unseekable bool) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	out := *se
	out.Kind = KindFailure
	out.Err = &retriesError{attempts: attempts, unseekable: unseekable, err: se.Err}
	return &out
}

type retriesError struct {
	attempts   int
	unseekable bool
	err        error
}

func (e *retriesError) Error() string {
	switch {
	case e.unseekable:
		return "not retried (the content cannot be rewound): " + e.err.Error()
	case e.attempts == 1:
		return "gave up after 1 attempt: " + e.err.Error()
	}
	return "gave up after " + strconv.Itoa(e.attempts) + " attempts: " + e.err.Error()
}

func (e *retriesError) Unwrap() error { return e.err }

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
