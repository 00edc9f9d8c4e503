package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/journal"
)

// jobsAnswer is one daemon's journal (GET /admin/jobs), or why it is
// missing.
type jobsAnswer struct {
	Addr string
	Err  string
	Jobs admin.Jobs
}

// Jobs asks every daemon for its journal, all at once, each with the
// CONSOLE_DAEMON_TIMEOUT deadline; not cached: the pages that show it are
// asked for rarely, and their refresh every CONSOLE_REFRESH.
func (d *daemonSource) Jobs(ctx context.Context) []jobsAnswer {
	out := make([]jobsAnswer, len(d.addrs))
	var wg sync.WaitGroup
	for i, addr := range d.addrs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, d.timeout)
			defer cancel()
			out[i].Addr = addr
			j, err := d.admin(addr).Jobs(ctx)
			if err != nil {
				out[i].Err = describeDaemonError(err)
				return
			}
			out[i].Jobs = j
		})
	}
	wg.Wait()
	return out
}

// failureRow is one failed attempt and its route.
type failureRow struct {
	Queue string
	journal.Failure
}

// failuresData is the recent failures page: every daemon's kept failed
// attempts, the newest first, of one route or all.
type failuresData struct {
	Queue    string   // "" for every route
	Queues   []string // the routes the daemons serve, for the filter
	Rows     []failureRow
	Problems []string // daemons that did not answer
}

// failuresPage shows the recent failed attempts: GET /failures?queue=Q.
func (s *server) failuresPage(w http.ResponseWriter, r *http.Request) {
	d := s.failuresData(r)
	s.render(w, r, http.StatusOK, "failures", page{Title: "Recent failures", Nav: "failures", Queue: d.Queue, Data: d})
}

func (s *server) failuresData(r *http.Request) failuresData {
	d := failuresData{Queue: r.URL.Query().Get("queue")}
	for _, a := range s.daemons.Jobs(r.Context()) {
		if a.Err != "" {
			d.Problems = append(d.Problems, fmt.Sprintf("daemon %s: %s", a.Addr, a.Err))
			continue
		}
		if !slices.Contains(d.Queues, a.Jobs.Queue) {
			d.Queues = append(d.Queues, a.Jobs.Queue)
		}
		if d.Queue != "" && a.Jobs.Queue != d.Queue {
			continue
		}
		for _, f := range a.Jobs.Failures {
			d.Rows = append(d.Rows, failureRow{Queue: a.Jobs.Queue, Failure: f})
		}
	}
	slices.Sort(d.Queues)
	slices.SortStableFunc(d.Rows, func(a, b failureRow) int { return b.At.Compare(a.At) })
	return d
}

// nameRow is one job name of one route, summed over the route's daemons.
type nameRow struct {
	Queue string
	journal.Name
}

// MeanRun is the mean time in php-fpm of the name's attempts.
func (n nameRow) MeanRun() string {
	if n.Runs == 0 {
		return "n/a"
	}
	return seconds(n.RunSeconds / float64(n.Runs))
}

// Longest is the longest time in php-fpm of one of its attempts.
func (n nameRow) Longest() string {
	if n.Runs == 0 {
		return "n/a"
	}
	return seconds(n.MaxRun)
}

// FailedShare is the share of its attempts that failed, in percent.
func (n nameRow) FailedShare() string {
	if all := n.Succeeded + n.Failed; all > 0 {
		return fmt.Sprintf("%.1f %%", 100*float64(n.Failed)/float64(all))
	}
	return "n/a"
}

// seconds shows a duration given in seconds, to the millisecond.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// namesData is the job names page.
type namesData struct {
	Rows     []nameRow
	Problems []string
}

// namesPage shows the figures of each job name: GET /jobs.
func (s *server) namesPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "names", page{Title: "Job names", Nav: "names", Data: s.namesData(r)})
}

func (s *server) namesData(r *http.Request) namesData {
	var d namesData
	byKey := map[[2]string]int{}
	for _, a := range s.daemons.Jobs(r.Context()) {
		if a.Err != "" {
			d.Problems = append(d.Problems, fmt.Sprintf("daemon %s: %s", a.Addr, a.Err))
			continue
		}
		for _, n := range a.Jobs.Names {
			key := [2]string{a.Jobs.Queue, n.Name}
			i, ok := byKey[key]
			if !ok {
				byKey[key] = len(d.Rows)
				d.Rows = append(d.Rows, nameRow{Queue: a.Jobs.Queue, Name: n})
				continue
			}
			d.Rows[i].add(n)
		}
	}
	slices.SortFunc(d.Rows, func(a, b nameRow) int {
		return cmp.Or(cmp.Compare(a.Queue, b.Queue), cmp.Compare(a.Name.Name, b.Name.Name))
	})
	return d
}

// add counts another daemon's figures of the same name in.
func (n *nameRow) add(o journal.Name) {
	n.Succeeded += o.Succeeded
	n.Failed += o.Failed
	n.DeadLettered += o.DeadLettered
	n.Runs += o.Runs
	n.RunSeconds += o.RunSeconds
	n.MaxRun = max(n.MaxRun, o.MaxRun)
	if o.Last.After(n.Last) {
		n.Last = o.Last
	}
}
