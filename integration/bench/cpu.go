package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Where the bench's CPU and memory figures come from: the containers' cgroups
// or the engine's stats, and /proc.

// containerCPU returns the CPU time container id has used since it
// started: from its cgroup v1 cpuacct.usage where the engine uses cgroup v1
// (exact, and only a file read), else from the engine's stats.
func (s *system) containerCPU(ctx context.Context, id string) (time.Duration, error) {
	if s.cpuSource == "cgroup" {
		ns, err := readUint(cgroupFile("cpuacct", id, "cpuacct.usage"))
		return time.Duration(ns), err
	}
	res, err := s.Docker.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		return 0, fmt.Errorf("container stats: %w", err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("container stats: %w", err)
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage), nil
}

// otherCPU says where the rest of the CPU figures come from.
const otherCPU = "bench: getrusage(RUSAGE_SELF); docker engine: /proc/PID/stat of dockerd, containerd and the shims of the bench's containers; whole machine: /proc/stat"

// cpuSourceText describes containerCPU's source for the report.
func (s *system) cpuSourceText() string {
	if s.cpuSource == "cgroup" {
		return "containers: cgroup v1 cpuacct.usage; " + otherCPU
	}
	return "containers: engine stats cpu_stats.cpu_usage.total_usage; " + otherCPU
}

// peakRSS returns the peak resident set of container c's main process,
// VmHWM in /proc/PID/status: the daemon's image holds nothing but the daemon,
// which runs as PID 1 in it, and the bench sees it in the host's /proc.
func peakRSS(ctx context.Context, c *testcontainers.DockerContainer) (uint64, error) {
	info, err := c.Inspect(ctx)
	if err != nil {
		return 0, fmt.Errorf("inspect: %w", err)
	}
	if info.State == nil || info.State.Pid == 0 {
		return 0, errors.New("the container is not running")
	}
	kb, err := statusField(fmt.Sprintf("/proc/%d/status", info.State.Pid), "VmHWM")
	return kb * 1024, err
}

// cgroupMemoryPeak returns the cgroup v1 memory.max_usage_in_bytes of
// container id: its processes' peak memory, page cache included.
func cgroupMemoryPeak(id string) (uint64, error) {
	return readUint(cgroupFile("memory", id, "memory.max_usage_in_bytes"))
}

// cgroupFile returns the path of a cgroup v1 file of a container, where the
// engine's cgroupfs driver puts it.
func cgroupFile(controller, id, name string) string {
	return filepath.Join("/sys/fs/cgroup", controller, "docker", id, name)
}

// readUint reads a file that holds one unsigned integer.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// statusField returns the number of a "Name:   123 kB" line of a
// /proc/PID/status file.
func statusField(path, name string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			num, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			return strconv.ParseUint(num, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s line", path, name)
}

// engineCPU returns the CPU time used so far by each process of the Docker
// engine that works for the containers ids, by PID: dockerd and containerd,
// which also serve everyone else, and the containerd shims of those
// containers, which carry their output to the engine.
func engineCPU(ids []string) (map[int]time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	cpu := map[int]time.Duration{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process ended
		}
		comm, ticks, ok := parseStat(string(b))
		switch {
		case !ok:
			continue
		case strings.HasPrefix(comm, "containerd-shim"):
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !slices.ContainsFunc(ids, func(id string) bool {
				return bytes.Contains(cmdline, []byte("-id\x00"+id+"\x00"))
			}) {
				continue
			}
		case comm != "dockerd" && comm != "containerd":
			continue
		}
		// /proc counts in USER_HZ, which is 100 on Linux whatever the kernel's HZ.
		cpu[pid] = time.Duration(ticks) * 10 * time.Millisecond
	}
	if len(cpu) == 0 {
		return nil, errors.New("no dockerd or containerd process in /proc")
	}
	return cpu, nil
}

// engineDelta returns the CPU time the engine's processes used between two
// engineCPU readings. A process that started in between counts in full; one
// that ended in between is left out, so that containers coming and going
// cannot make the delta negative.
func engineDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d
}

// machineCPU returns the CPU time all CPUs of the machine spent busy so far:
// user, nice, system, irq, softirq and steal time from /proc/stat.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	ticks, err := parseCPULine(line)
	return time.Duration(ticks) * 10 * time.Millisecond, err
}

// parseCPULine returns the busy ticks of /proc/stat's "cpu" line:
// cpu user nice system idle iowait irq softirq steal [guest guest_nice],
// where guest time is already counted in user.
func parseCPULine(line string) (uint64, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected line %q", line)
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		busy += n
	}
	return busy, nil
}

// parseStat returns the command name and utime+stime (in clock ticks) from
// the text of a /proc/PID/stat file.
func parseStat(stat string) (comm string, ticks uint64, ok bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	// After the name: state (field 3), ..., utime (14), stime (15).
	f := strings.Fields(stat[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return stat[open+1 : end], utime + stime, true
}

// selfCPU returns the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0 // cannot fail for RUSAGE_SELF with a valid pointer
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
