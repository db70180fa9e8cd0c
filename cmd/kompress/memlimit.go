package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/kompress/kompress/runner"
)

// cgroupRoot is where the cgroup file systems are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// applyMemoryLimit sets the Go memory limit to 90% of the container's
// memory limit, so the garbage collector works harder before the kernel
// kills the pod, and the runner's memory checks (runner.checkMemory)
// refuse early, naming the limit, a model that cannot fit. The limit is
// KOMPRESS_MEMORY_LIMIT (bytes; the controller sets it from the stage's
// resources.limits.memory), else the process's own cgroup's (v2
// memory.max, v1 memory.limit_in_bytes). An explicit GOMEMLIMIT wins.
func applyMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		runner.MemoryLimitFrom = "GOMEMLIMIT"
		return
	}
	limit, from := containerMemoryLimit()
	if limit <= 0 {
		return
	}
	debug.SetMemoryLimit(limit / 10 * 9)
	runner.MemoryLimitFrom = fmt.Sprintf("90%% of %s, %d bytes", from, limit)
}

// containerMemoryLimit returns the memory limit the process runs under
// and where it was read, or 0.
func containerMemoryLimit() (int64, string) {
	if v, err := strconv.ParseInt(os.Getenv("KOMPRESS_MEMORY_LIMIT"), 10, 64); err == nil && v > 0 {
		return v, "KOMPRESS_MEMORY_LIMIT"
	}
	v2, v1 := selfCgroups("/proc/self/cgroup")
	for _, c := range []struct{ path, what string }{
		{filepath.Join(cgroupRoot, v2, "memory.max"), "the cgroup v2 memory.max"},
		{filepath.Join(cgroupRoot, "memory", v1, "memory.limit_in_bytes"), "the cgroup v1 memory.limit_in_bytes"},
	} {
		if v, ok := readLimit(c.path); ok {
			return v, fmt.Sprintf("%s of %s", c.what, filepath.Dir(c.path))
		}
	}
	return 0, ""
}

// selfCgroups reads the process's cgroup v2 path and its v1 memory
// controller's path (inside a container's cgroup namespace both are "/").
func selfCgroups(file string) (v2, v1 string) {
	f, err := os.Open(file)
	if err != nil {
		return "/", "/"
	}
	defer f.Close()
	v2, v1 = "/", "/"
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case strings.Contains(","+parts[1]+",", ",memory,"):
			v1 = parts[2]
		}
	}
	return v2, v1
}

// readLimit reads a cgroup memory limit; "max" and v1's unlimited
// (a huge page-rounded number) are no limit.
func readLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<62 {
		return 0, false
	}
	return v, true
}
