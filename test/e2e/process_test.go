//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managerProcess is cmd/manager running as its own process.
type managerProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startManagerProcess(bin string, args []string, logPath string) (*managerProcess, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	m := &managerProcess{cmd: exec.Command(bin, args...), logPath: logPath, done: make(chan struct{})}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	go func() {
		_ = m.cmd.Wait()
		logf.Close()
		close(m.done)
	}()
	return m, nil
}

// waitReady waits for the manager's /readyz on the port its args name.
func (m *managerProcess) waitReady(ctx context.Context, args []string) error {
	addr := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok {
			addr = v
		}
	}
	url := "http://127.0.0.1" + addr[strings.LastIndex(addr, ":"):] + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m.exited() {
			return fmt.Errorf("the manager exited at start; log:\n%s", m.tail(40))
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the manager's %s did not answer 200 in 30s; log:\n%s", url, m.tail(40))
}

func (m *managerProcess) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM as the kubelet would, then SIGKILL after 10s.
func (m *managerProcess) stop() {
	if m.exited() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// peakRSS is the manager's peak resident memory (VmHWM), in bytes.
func (m *managerProcess) peakRSS() (int64, error) {
	return procStatusBytes(m.cmd.Process.Pid, "VmHWM:")
}

func (m *managerProcess) tail(lines int) string {
	b, _ := os.ReadFile(m.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func procStatusBytes(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pidFile records every process the suite starts, with its start time, so
// hack/e2e.sh can kill what is left if the test binary dies: by PID, never
// by name, and only a process whose start time still matches.
type pidFile struct {
	mu   sync.Mutex
	path string
}

func openPIDFile(path string) *pidFile { return &pidFile{path: path} }

func (p *pidFile) add(pid int) {
	if p == nil || p.path == "" {
		return
	}
	start, err := startTime(pid)
	if err != nil {
		return // already gone
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%d %s\n", pid, start)
}

// children records the current child processes of this test binary
// (envtest starts kube-apiserver and etcd in their own process groups).
func (p *pidFile) children() {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fields := statFields(pid); len(fields) > 3 && fields[3] == self {
			p.add(pid)
		}
	}
}

// startTime is field 22 of /proc/PID/stat (clock ticks after boot).
func startTime(pid int) (string, error) {
	f := statFields(pid)
	if len(f) < 22 {
		return "", fmt.Errorf("no /proc/%d/stat", pid)
	}
	return f[21], nil
}

// statFields splits /proc/PID/stat, whose second field (the command in
// parentheses) may hold spaces.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	head := strings.Fields(s[:strings.IndexByte(s, '(')])
	return append(append(head, s[strings.IndexByte(s, '('):i+1]), strings.Fields(s[i+1:])...)
}
