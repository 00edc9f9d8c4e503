package main

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// Bounds of what a request may ask.
const (
	maxIDs       = 1000 // ids in one replay or purge; a purge confirms at most this many
	maxFieldLen  = 200  // a reason, a job name, an id, a pause's reason
	maxSkip      = 1_000_000
	maxRate      = 10_000 // jobs per second
	defaultRate  = 10
	routePattern = `^[A-Za-z0-9_.:-]{1,200}$`
)

var routeName = regexp.MustCompile(routePattern)

// selection is what a dead-letter page or action works on: a route and a
// filter, from the query (GET) or the form (POST).
type selection struct {
	Queue  string
	Reason string
	Job    string
	Older  string // as typed: 90m, 36h, 7d
	ID     string // search by message id
	IDs    []string
	Filter deadletter.Filter
}

// Query returns the selection as a URL query, ids left out.
func (sel selection) Query() string {
	q := url.Values{"queue": {sel.Queue}}
	for k, v := range map[string]string{"reason": sel.Reason, "job": sel.Job, "older": sel.Older, "id": sel.ID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// Href is the dead letters page of the selection. A template.URL, as a
// query written into an href after "?" would be escaped whole by
// html/template ("=" and "&" too), and so lost.
func (sel selection) Href() template.URL {
	return template.URL("/dead?" + sel.Query()) // Query encodes each value
}

// ListHref is the dead letters page of the selection without its search
// by id: from one job's page, back to the list it is in.
func (sel selection) ListHref() template.URL {
	sel.ID = ""
	return sel.Href()
}

// Describe says in words which jobs the selection takes.
func (sel selection) Describe() string {
	var parts []string
	if len(sel.IDs) > 0 {
		parts = append(parts, fmt.Sprintf("%d chosen ids", len(sel.IDs)))
	}
	if sel.ID != "" {
		parts = append(parts, "id "+sel.ID)
	}
	if sel.Reason != "" {
		parts = append(parts, "reason "+sel.Reason)
	}
	if sel.Job != "" {
		parts = append(parts, "job "+sel.Job)
	}
	if sel.Older != "" {
		parts = append(parts, "older than "+sel.Older)
	}
	if len(parts) == 0 {
		return "every dead letter"
	}
	return strings.Join(parts, ", ")
}

// parseSelection reads a selection from v, checking every field.
func parseSelection(v url.Values) (selection, error) {
	sel := selection{
		Queue:  strings.TrimSpace(v.Get("queue")),
		Reason: strings.TrimSpace(v.Get("reason")),
		Job:    strings.TrimSpace(v.Get("job")),
		Older:  strings.TrimSpace(v.Get("older")),
		ID:     strings.TrimSpace(v.Get("id")),
	}
	if !routeName.MatchString(sel.Queue) {
		return sel, fmt.Errorf("route %q: want a queue name of letters, digits and _.:- (up to 200)", sel.Queue)
	}
	for name, value := range map[string]string{"reason": sel.Reason, "job": sel.Job, "id": sel.ID} {
		if err := checkText(name, value); err != nil {
			return sel, err
		}
	}
	if sel.Older != "" {
		d, err := parseAge(sel.Older)
		if err != nil {
			return sel, err
		}
		sel.Filter.OlderThan = d
	}
	for _, id := range v["ids"] {
		if err := checkText("id", id); err != nil {
			return sel, err
		}
		if id != "" && !slices.Contains(sel.IDs, id) {
			sel.IDs = append(sel.IDs, id)
		}
	}
	if len(sel.IDs) > maxIDs {
		return sel, fmt.Errorf("%d ids chosen: at most %d at once", len(sel.IDs), maxIDs)
	}
	sel.Filter.Reason, sel.Filter.Name = sel.Reason, sel.Job
	sel.Filter.IDs = slices.Clone(sel.IDs)
	if sel.ID != "" {
		sel.Filter.IDs = append(sel.Filter.IDs, sel.ID)
	}
	return sel, nil
}

// checkText refuses a field too long, not UTF-8, or with control characters.
func checkText(name, value string) error {
	switch {
	case len(value) > maxFieldLen:
		return fmt.Errorf("%s: at most %d bytes, got %d", name, maxFieldLen, len(value))
	case !utf8.ValidString(value):
		return fmt.Errorf("%s: not UTF-8", name)
	case strings.IndexFunc(value, unicode.IsControl) >= 0:
		return fmt.Errorf("%s: no control characters", name)
	}
	return nil
}

// parseAge reads an age: a Go duration (90m, 36h) or whole days (7d).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("older than %q: want a positive age such as 90m, 36h or 7d", s)
}

// deadData is the dead-letter page's.
type deadData struct {
	Sel     selection
	Routes  []string
	Page    deadPage
	Skip    int
	Next    int // skip of the next page
	Error   string
	Tasks   []task
	Reasons []string // the reasons the daemon writes, for the filter's list
}

// Busy reports whether a replay or purge of the queue runs: it holds the
// dead letters it reads (unacknowledged), which the page can neither count
// nor list until it ends.
func (d deadData) Busy() bool {
	return slices.ContainsFunc(d.Tasks, func(t task) bool { return t.Running() })
}

// NextHref is the next page of the list (as Href).
func (d deadData) NextHref() template.URL {
	return template.URL("/dead?" + d.Sel.Query() + "&skip=" + strconv.Itoa(d.Next)) // as Href
}

// routes lists the routes the daemons serve, for the route menu.
func (s *server) routes(r *http.Request) []string {
	var out []string
	for _, rv := range buildOverview(s.daemons.Snapshot(r.Context())).Routes {
		out = append(out, rv.Queue)
	}
	return out
}

func (s *server) deadPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	routes := s.routes(r)
	if q.Get("queue") == "" && len(routes) > 0 {
		q.Set("queue", routes[0])
	}
	sel, err := parseSelection(q)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Dead letters", err)
		return
	}
	skip, err := strconv.Atoi(cmpOr(q.Get("skip"), "0"))
	if err != nil || skip < 0 || skip > maxSkip {
		s.fail(w, r, http.StatusBadRequest, "Dead letters", fmt.Errorf("skip: a whole number from 0 to %d", maxSkip))
		return
	}
	d := deadData{Sel: sel, Routes: routes, Skip: skip, Tasks: s.tasks.recent(sel.Queue), Reasons: knownReasons}
	d.Page, err = s.dead.Page(r.Context(), sel.Queue, sel.Filter, skip, s.pageSize, s.scan)
	if err != nil {
		d.Error = err.Error()
	}
	d.Next = skip + len(d.Page.Jobs)
	s.render(w, r, http.StatusOK, "dead", page{Title: "Dead letters", Nav: "dead", Queue: sel.Queue, Data: d})
}

// jobData is the page of one dead job.
type jobData struct {
	Sel selection
	Job shownJob
}

func (s *server) jobPage(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelection(r.URL.Query())
	if err == nil && sel.ID == "" {
		err = errors.New("id: which job? (its message id)")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Dead letter", err)
		return
	}
	j, err := s.dead.Show(r.Context(), sel.Queue, sel.ID)
	if errors.Is(err, errJobNotFound) {
		s.fail(w, r, http.StatusNotFound, "Dead letter", fmt.Errorf("%s: no dead letter with id %q (replayed or purged since?)", sel.Queue, sel.ID))
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "Dead letter", err)
		return
	}
	s.render(w, r, http.StatusOK, "job", page{Title: "Dead letter " + sel.ID, Nav: "dead", Queue: sel.Queue, Data: jobData{Sel: sel, Job: showJob(j, time.Now())}})
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
