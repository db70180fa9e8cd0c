package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// browser finds Chromium and ChromeDriver: $KOMPRESS_CHROMIUM and
// $KOMPRESS_CHROMEDRIVER, else chromium and chromedriver on PATH. Without
// them the test is skipped, unless $KOMPRESS_BROWSER_TESTS is set (as
// `make test-browser`, which installs them, sets it).
func browser(t *testing.T) (chromium, driver string) {
	t.Helper()
	find := func(env, name string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		p, _ := exec.LookPath(name)
		return p
	}
	chromium, driver = find("KOMPRESS_CHROMIUM", "chromium"), find("KOMPRESS_CHROMEDRIVER", "chromedriver")
	if chromium == "" || driver == "" {
		if os.Getenv("KOMPRESS_BROWSER_TESTS") != "" {
			t.Fatal("KOMPRESS_BROWSER_TESTS is set but chromium or chromedriver is missing: run `make test-browser` (hack/browser.sh installs them)")
		}
		t.Skip("chromium and chromedriver not found (make test-browser installs them)")
	}
	return chromium, driver
}

// webDriver is a minimal W3C WebDriver client for one session.
type webDriver struct {
	base, session string
}

func (w *webDriver) call(method, path string, body any) (json.RawMessage, error) {
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.base+path, in)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s %s: %s", method, path, data)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out.Value)
	}
	return out.Value, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// layout is what the page looks like to the browser, measured by a script
// the test runs in it (the report itself runs none).
type layout struct {
	Title    string                             `json:"title"`
	SVGs     map[string]*struct{ W, H float64 } `json:"svgs"`
	Selected *struct {
		Variant string  `json:"variant"`
		R       float64 `json:"r"`
		W       float64 `json:"w"`
		Inside  bool    `json:"inside"`
		Fill    string  `json:"fill"`
		Stroke  string  `json:"stroke"`
	} `json:"selected"`
	Points       int    `json:"points"`
	Below        int    `json:"below"`
	ParetoPoints int    `json:"paretoPoints"`
	Gates        int    `json:"gates"`
	GateVisible  bool   `json:"gateVisible"`
	Bars         int    `json:"bars"`
	LayerBars    int    `json:"layerBars"`
	SelectedRow  string `json:"selectedRow"`
}

const measure = `
const r = {title: document.title, svgs: {}};
for (const id of ['tradeoff-bytes', 'tradeoff-nonzero', 'stages', 'layers']) {
  const s = document.getElementById(id);
  if (s && s.namespaceURI === 'http://www.w3.org/2000/svg') {
    const b = s.getBoundingClientRect();
    r.svgs[id] = {W: b.width, H: b.height};
  }
}
const plot = document.getElementById('tradeoff-bytes');
const sel = plot && plot.querySelector('circle.selected');
if (sel) {
  const b = sel.getBoundingClientRect(), p = plot.getBoundingClientRect(), cs = getComputedStyle(sel);
  r.selected = {variant: sel.dataset.variant, r: parseFloat(cs.r), w: b.width, fill: cs.fill, stroke: cs.stroke,
    inside: b.width > 0 && b.left >= p.left && b.right <= p.right && b.top >= p.top && b.bottom <= p.bottom};
}
r.points = plot ? plot.querySelectorAll('circle.point').length : 0;
r.below = plot ? plot.querySelectorAll('path.point.below').length : 0;
const front = document.querySelector('#tradeoff-nonzero polyline.pareto');
r.paretoPoints = front ? front.points.numberOfItems : 0;
const gates = document.querySelectorAll('line.gate');
r.gates = gates.length;
r.gateVisible = gates.length > 0 && gates[0].getBoundingClientRect().width > 100;
r.bars = document.querySelectorAll('#stages rect.bar').length;
r.layerBars = document.querySelectorAll('#layers rect.bar-sparsity').length;
const row = document.querySelector('table#variants tr.selected td');
r.selectedRow = row ? row.textContent : '';
return r;
`

// The report looks right in a real browser: headless Chromium, driven
// through ChromeDriver, lays out every plot as SVG, draws the selected
// point (ringed, inside its plot) and the other variants, the Pareto
// front, the gate line, the stage bars and the layer bars. The test saves
// a screenshot ($KOMPRESS_REPORT_SCREENSHOT, else in its temporary
// folder) for a person to look at.
func TestReportInChromium(t *testing.T) {
	chromium, driverBin := browser(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := Render(&b, sweepData()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	driver := exec.CommandContext(ctx, driverBin, fmt.Sprintf("--port=%d", port))
	driver.Stdout, driver.Stderr = io.Discard, io.Discard
	if err := driver.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = driver.Wait() }()
	w := &webDriver{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := w.call(http.MethodGet, "/status", nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The flags this machine needs (docs: .library/env/machines/go.md):
	// no sandbox as root, no GPU, no network chatter, a fresh profile.
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,1300"}
	raw, err := w.call(http.MethodPost, "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome", "goog:chromeOptions": map[string]any{"binary": chromium, "args": args}}}})
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(raw, &sess); err != nil || sess.SessionID == "" {
		t.Fatalf("new session: %s (%v)", raw, err)
	}
	w.session = "/session/" + sess.SessionID
	defer func() { _, _ = w.call(http.MethodDelete, w.session, nil) }()

	if _, err := w.call(http.MethodPost, w.session+"/url", map[string]string{"url": "file://" + page}); err != nil {
		t.Fatal(err)
	}
	raw, err = w.call(http.MethodPost, w.session+"/execute/sync", map[string]any{"script": measure, "args": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	var got layout
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	t.Logf("layout: %s", raw)

	if got.Title != "kompress report: mnist-8.onnx → prune → int8 · 3 variants" {
		t.Errorf("title %q", got.Title)
	}
	for _, id := range []string{"tradeoff-bytes", "tradeoff-nonzero", "stages", "layers"} {
		if s := got.SVGs[id]; s == nil || s.W < 200 || s.H < 40 {
			t.Errorf("svg#%s is not laid out as SVG: %+v", id, s)
		}
	}
	if s := got.Selected; s == nil || s.Variant != "v2" || !s.Inside || s.R != 8 || s.W < 14 || s.Fill != "rgb(42, 157, 143)" || s.Stroke != "rgb(29, 36, 51)" {
		t.Errorf("the selected point: %+v; want v2, ringed (r 8, dark stroke), green (passed), inside its plot", got.Selected)
	}
	if got.Points != 2 || got.Below != 1 {
		t.Errorf("%d points in range and %d below on the bytes plot, want v1 and v2, and v3 below", got.Points, got.Below)
	}
	if got.ParetoPoints != 3 || got.Gates != 2 || !got.GateVisible {
		t.Errorf("Pareto front of %d points (want 3), %d gate lines (want one per plot), visible %t", got.ParetoPoints, got.Gates, got.GateVisible)
	}
	if got.Bars != 7 || got.LayerBars != 1 {
		t.Errorf("%d stage bars (want 7: the source's bytes and three per stage), %d layer sparsity bars (want 1)", got.Bars, got.LayerBars)
	}
	if got.SelectedRow != "▶ v2" {
		t.Errorf("the selected table row starts with %q", got.SelectedRow)
	}

	raw, err = w.call(http.MethodGet, w.session+"/screenshot", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b64 string
	if err := json.Unmarshal(raw, &b64); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	shot := os.Getenv("KOMPRESS_REPORT_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(dir, "report.png")
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}
