package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	lua "github.com/yuin/gopher-lua"
)

// healthScript is the Argo CD health check the chart documents.
const healthScript = "charts/kompress/health/compressionjob.lua"

var loadHealthScript = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join(checkoutRoot(), healthScript))
	return string(b), err
})

func checkoutRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// argoHealth runs the health check on an object as Argo CD does: the object
// as the global obj (JSON numbers as Lua numbers, arrays as 1-based tables),
// only the base, table, string and math libraries, and the returned table's
// status and message.
func argoHealth(obj map[string]any) (status, message string, err error) {
	script, err := loadHealthScript()
	if err != nil {
		return "", "", err
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return "", "", err
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the health check returned %s, not a table", L.Get(-1).Type())
	}
	st, _ := hs.RawGetString("status").(lua.LString)
	msg, _ := hs.RawGetString("message").(lua.LString)
	switch st {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("the health check returned status %q, which Argo CD does not know", st)
	}
	return string(st), string(msg), nil
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case json.Number:
		f, _ := x.Float64()
		return lua.LNumber(f)
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	}
	panic(fmt.Sprintf("toLua: unexpected %T", v))
}

// The health check over CompressionJobs as a real end-to-end run left them
// (testdata/statuses, written by `make e2e-fixtures`).
func TestArgoHealthOnRecordedStatuses(t *testing.T) {
	dir := filepath.Join(checkoutRoot(), "test", "e2e", "testdata", "statuses")
	for _, tc := range []struct {
		fixture, status string
		message         []string
	}{
		{"sample-created", "Progressing", []string{"Waiting for the kompress controller"}},
		{"sample-running", "Progressing", []string{"stages 0/2 done"}},
		{"sample-ready", "Healthy", []string{"Succeeded: all 2 stages done: s3://kompress-models/mnist/compressed/", "/model.onnx", "(sha256:"}},
		{"unschedulable", "Progressing", []string{"Unschedulable:", "Insufficient memory"}},
		{"bad-model", "Degraded", []string{"BadInput", "s3://kompress-models/bad/model.onnx"}},
		{"quality-gate", "Degraded", []string{"QualityGateFailed", "maxAccuracyDrop"}},
		{"spec-changed", "Progressing", []string{"observe generation 2"}},
		{"no-runner-serviceaccount", "Degraded", []string{"ServiceAccountNotFound", "kompress-runner"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, tc.fixture+".json"))
			if err != nil {
				t.Fatalf("%v: regenerate the fixtures with `make e2e-fixtures`", err)
			}
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatal(err)
			}
			status, msg, err := argoHealth(obj)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("health = %s (%q), want %s", status, msg, tc.status)
			}
			for _, want := range tc.message {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
	// Every recorded fixture has a case above.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 8 {
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f))
		}
		sort.Strings(names)
		t.Errorf("testdata/statuses holds %d fixtures, want the 8 above: %v", len(files), names)
	}
}

// Statuses no end-to-end case produces.
func TestArgoHealthEdgeCases(t *testing.T) {
	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg}
	}
	for _, tc := range []struct {
		name            string
		obj             map[string]any
		status, message string
	}{{
		name:   "no status at all",
		obj:    map[string]any{"metadata": map[string]any{"generation": int64(1)}},
		status: "Progressing", message: "Waiting for the kompress controller to report status",
	}, {
		name: "suspended",
		obj: map[string]any{"metadata": map[string]any{"generation": int64(3)}, "status": map[string]any{
			"observedGeneration": int64(3), "progress": "1/2",
			"conditions": []any{cond("Ready", "False", "Suspended", "suspended at stage int8 (1/2 done)"),
				cond("Suspended", "True", "Suspended", "suspended at stage int8 (1/2 done)")},
		}},
		status: "Suspended", message: "Suspended: suspended at stage int8 (1/2 done)",
	}, {
		name: "conditions without reason or message",
		obj: map[string]any{"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{
			"observedGeneration": int64(1), "conditions": []any{map[string]any{"type": "Ready", "status": "True"}},
		}},
		status: "Healthy", message: "",
	}, {
		name: "stalled wins over a stale Ready",
		obj: map[string]any{"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{
			"observedGeneration": int64(1),
			"conditions":         []any{cond("Ready", "True", "Succeeded", "old"), cond("Stalled", "True", "StageFailed", "stage x failed")},
		}},
		status: "Degraded", message: "StageFailed: stage x failed",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg, err := argoHealth(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([2]string{tc.status, tc.message}, [2]string{status, msg}); diff != "" {
				t.Errorf("health (-want +got):\n%s", diff)
			}
		})
	}
}

// The chart README shows the health check to paste into argocd-cm: it must
// be the tested script, indented as a block scalar.
func TestReadmeShowsTheHealthCheck(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(checkoutRoot(), "charts", "kompress", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := loadHealthScript()
	if err != nil {
		t.Fatal(err)
	}
	const key = "resource.customizations.health.kompress.dev_CompressionJob: |\n"
	i := strings.Index(string(readme), key)
	if i < 0 {
		t.Fatalf("charts/kompress/README.md has no %q block", strings.TrimSpace(key))
	}
	var block []string
	for _, line := range strings.Split(string(readme)[i+len(key):], "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		block = append(block, strings.TrimPrefix(line, "    "))
	}
	if diff := cmp.Diff(strings.TrimSpace(script), strings.TrimSpace(strings.Join(block, "\n"))); diff != "" {
		t.Errorf("README health check differs from %s (-file +README):\n%s", healthScript, diff)
	}
}
