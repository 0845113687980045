package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuTime is the CPU time all threads of process pid have run so far:
// the sum of their schedstat run times, in nanoseconds. /proc/PID/stat's
// utime and stime count 10 ms ticks, too coarse for a command whose node
// side takes a few milliseconds (a commit). A thread that has exited no
// longer counts; a Go node keeps its threads.
func cpuTime(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // a thread gone
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", filepath.Join(dir, t.Name(), "schedstat"))
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Join(dir, t.Name(), "schedstat"), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}
