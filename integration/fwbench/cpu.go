package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// usage is the CPU time the measured containers and the whole machine
// used so far, at one moment.
type usage struct {
	at      time.Time
	byID    map[string]time.Duration
	machine time.Duration // every CPU busy; 0 if unknown
}

// snapshot reads the CPU time of the containers ids and of the machine.
func (b *bench) snapshot(ctx context.Context, ids ...string) (usage, error) {
	u := usage{at: time.Now(), byID: map[string]time.Duration{}}
	u.machine, _ = machineCPU() // a figure of information only
	for _, id := range ids {
		t, err := b.containerCPU(ctx, id)
		if err != nil {
			return u, fmt.Errorf("cpu time of container %s: %w", id[:12], err)
		}
		u.byID[id] = t
	}
	return u, nil
}

// containerCPU returns the CPU time container id used since it started:
// its cgroup v1 cpuacct.usage where the engine uses cgroup v1 (exact, a
// file read), else the engine's stats.
func (b *bench) containerCPU(ctx context.Context, id string) (time.Duration, error) {
	if ns, err := readUint(filepath.Join("/sys/fs/cgroup/cpuacct/docker", id, "cpuacct.usage")); err == nil {
		return time.Duration(ns), nil
	}
	res, err := b.sys.Docker.ContainerStats(ctx, id, client.ContainerStatsOptions{})
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

// readUint reads a file that holds one unsigned integer.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// machineCPU returns the CPU time all CPUs spent busy so far: user, nice,
// system, irq, softirq and steal of /proc/stat's cpu line, in USER_HZ
// (100 a second on Linux).
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected line %q", line)
	}
	var ticks uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
