package panics_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kompress/kompress/runner/panics"
)

// raised runs f and returns what it panicked with, or nil.
func raised(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// TestGroupRaisesAPanicOnWait: a goroutine's panic is recovered on it
// (the process lives on) and raised again by Wait, on the waiting
// goroutine, keeping the value, its first line and the site that
// panicked; OnPanic runs once, and the other goroutines finish.
func TestGroupRaisesAPanicOnWait(t *testing.T) {
	var stopped, finished atomic.Int32
	g := panics.Group{OnPanic: func() { stopped.Add(1) }}
	for i := range 4 {
		g.Go(func() {
			if i%2 == 1 {
				panic("worker failed\nsecond line")
			}
			finished.Add(1)
		})
	}
	p := raised(g.Wait)
	pv, ok := p.(*panics.Panic)
	if !ok {
		t.Fatalf("Wait panicked with %T %v, want a *panics.Panic", p, p)
	}
	if pv.Value != "worker failed\nsecond line" || stopped.Load() != 1 || finished.Load() != 2 {
		t.Errorf("value %q, OnPanic ran %d times, %d goroutines finished", pv.Value, stopped.Load(), finished.Load())
	}
	msg := pv.Message()
	if !strings.HasPrefix(msg, "worker failed at ") || !strings.Contains(msg, "panics_test.go:") || strings.Contains(msg, "second line") {
		t.Errorf("message %q: want the first line and the site in panics_test.go", msg)
	}
	if pv.Error() != "panic: "+msg {
		t.Errorf("Error() = %q", pv.Error())
	}
	// Recovered passes a carried panic through, keeping its stack.
	if again := panics.Recovered(pv); again != pv {
		t.Error("Recovered replaced a carried *Panic")
	}
	// A runtime error names the line of the user's code.
	var h panics.Group
	h.Go(func() {
		var m map[string]int
		m["x"]++
	})
	rt := raised(h.Wait).(*panics.Panic)
	if msg := rt.Message(); !strings.HasPrefix(msg, "assignment to entry in nil map at ") || !strings.Contains(msg, "panics_test.go:") {
		t.Errorf("message %q", msg)
	}
	// No panic: Wait returns.
	var ok2 panics.Group
	ok2.Go(func() {})
	if p := raised(ok2.Wait); p != nil {
		t.Errorf("Wait panicked with %v", p)
	}
}

// TestEveryGoroutineGoesThroughAGroup: a go statement in the runner's
// code (runner/ and cmd/kompress, outside tests and test helper
// packages) would crash the process on a panic; every goroutine must be
// started by panics.Group.Go.
func TestEveryGoroutineGoesThroughAGroup(t *testing.T) {
	fset := token.NewFileSet()
	var found []string
	files := 0
	for _, root := range []string{"..", "../../cmd/kompress"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasSuffix(d.Name(), "test") && d.Name() != "test" {
					return filepath.SkipDir // onnxtest, storagetest, ...: test helpers
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Base(filepath.Dir(path)) == "panics" {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files++
			ast.Inspect(f, func(n ast.Node) bool {
				if g, ok := n.(*ast.GoStmt); ok {
					found = append(found, fset.Position(g.Pos()).String())
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 100 {
		t.Fatalf("read %d files: is the walk looking in the right place?", files)
	}
	for _, at := range found {
		t.Errorf("%s: a go statement; start the goroutine with panics.Group.Go so that a panic on it does not crash the process", at)
	}
}
