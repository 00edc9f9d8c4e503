package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// describe returns the report's header: the machine, the engine, the images
// and how things were measured.
func describe(ctx context.Context, s *system) []field {
	h := []field{{"machine", machine()}}
	if v, err := s.Docker.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		h = append(h, field{"engine", "Docker " + v.Version})
	}
	var imgs []string
	ids := s.Images.All()
	for i, ref := range s.refs.All() {
		text := ref + " " + shortID(ids[i])
		if img, err := s.Docker.ImageInspect(ctx, ids[i]); err == nil {
			text += " (built " + img.Created + ")"
		}
		imgs = append(imgs, text)
	}
	h = append(h,
		field{"images", strings.Join(imgs, ", ")},
		field{"deployment", "compose.yaml's settings with no .env (docker compose config): " + s.dep.describe()},
		field{"setup", fmt.Sprintf("the pool runs bench.php (no work), the daemon's SCRIPT_FILENAME; php-fpm pm.max_children %d; daemon CONCURRENCY %d; caller binary copied out of its image, run on the host", s.children, s.concurrency)},
		field{"cpu", s.cpuSourceText()},
		field{"network", "the bench reaches rabbitmq at " + s.route + "; php-fpm through the same socket as the daemon"},
		field{"at start", loadAndNeighbours(ctx, s)},
	)
	return h
}

// shortID returns the first 12 hex digits of an image ID, as docker
// images shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// machine describes the host from /proc: CPU model, cores, memory, kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown memory"
	if kb, err := statusField("/proc/meminfo", "MemTotal"); err == nil {
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores, %s, Linux %s", model, runtime.NumCPU(), mem, bytes.TrimSpace(kernel))
}

// loadAndNeighbours returns the load average and how many running
// containers are someone else's, to tell whether the run shared the machine.
func loadAndNeighbours(ctx context.Context, s *system) string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	text := "load average n/a"
	if len(f) >= 3 {
		text = "load average " + strings.Join(f[:3], " ")
	}
	res, err := s.Docker.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return text
	}
	others := 0
	for _, c := range res.Items {
		if len(c.Names) == 0 || !strings.HasPrefix(strings.TrimPrefix(c.Names[0], "/"), namePrefix) {
			others++
		}
	}
	return text + ", " + strconv.Itoa(others) + " other running container(s)"
}
