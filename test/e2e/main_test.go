//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// cl is the cluster every test of the suite shares.
var cl *cluster

func TestMain(m *testing.M) {
	flag.Parse()
	start := time.Now()
	c, err := startCluster(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: starting the cluster: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %s (work dir %s)\n", time.Since(start).Round(10*time.Millisecond), c.dir)
	cl = c
	code := m.Run()
	if err := c.exited(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: a component died during the run: %v\n", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: manager log tail:\n%s\n", c.manager.tail(60))
		fmt.Fprintf(os.Stderr, "e2e: Kueue log tail:\n%s\n", c.kueue.tail(30))
	}
	c.stop()
	os.Exit(code)
}
