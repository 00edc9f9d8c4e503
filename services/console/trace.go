package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The span attributes the trace page reads (services/daemon/README.md,
// Tracing): OpenTelemetry's message id, and fpmq's own.
const (
	attrMessageID = "messaging.message.id"
	attrAttempt   = "fpmq.attempt"
	attrOutcome   = "fpmq.outcome"
	attrReason    = "fpmq.reason"
	attrStatus    = "fpmq.php_fpm.status"
	attrWorkerMS  = "fpmq.php_fpm.duration_ms"
	attrWaitMS    = "fpmq.queue.wait_ms"
)

// jaegerTimeout bounds one request to Jaeger's query API.
const jaegerTimeout = 5 * time.Second

// maxTraces is how many traces of one message id the page lists: a job
// and its replays.
const maxTraces = 20

// maxBody bounds an answer of Jaeger's: a trace of a job is a few spans.
const maxBody = 16 << 20

var (
	errTraceNotFound = errors.New("trace not found")
	traceIDPattern   = regexp.MustCompile(`^(?:[0-9a-f]{16}|[0-9a-f]{32})$`)
)

// jaeger reads traces from Jaeger's query HTTP API (/api/traces,
// /api/services): the one Jaeger's own UI uses.
type jaeger struct {
	base   *url.URL
	client *http.Client
}

// newJaeger returns a client of the query API at base (CONSOLE_JAEGER_URL),
// or nil when base is empty: tracing off.
func newJaeger(base string, timeout time.Duration) *jaeger {
	if base == "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return nil // config.validate refused it
	}
	return &jaeger{base: u, client: &http.Client{Timeout: timeout}}
}

// checkJaegerURL refuses a CONSOLE_JAEGER_URL that is not http(s)://HOST[:PORT][/PATH].
func checkJaegerURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("CONSOLE_JAEGER_URL: %q is not the address of Jaeger's query API: want http://HOST:16686", v)
	}
	return nil
}

// jaegerAnswer is the envelope of every answer of the query API.
type jaegerAnswer[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// jaegerTrace is a trace as the query API gives it.
type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64       `json:"startTime"` // µs since the epoch
	Duration  int64       `json:"duration"`  // µs
	Tags      []jaegerTag `json:"tags"`
	ProcessID string      `json:"processID"`
}

type jaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// get asks the query API for path?query and decodes its answer into out.
// A 404 is errTraceNotFound; an unreachable Jaeger, another status or an
// answer that is not the API's says so, naming Jaeger's address.
func (j *jaeger) get(ctx context.Context, path string, query url.Values, out any) error {
	u := *j.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("no answer from Jaeger at %s: %w", j.base.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return errTraceNotFound
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read Jaeger's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("got %s from Jaeger at %s: %s", resp.Status, j.base.Redacted(), cut(strings.TrimSpace(string(body)), 200))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("not an answer of Jaeger's query API from %s (%v)", j.base.Redacted(), err)
	}
	return nil
}

// Trace returns the trace with id traceID, or errTraceNotFound.
func (j *jaeger) Trace(ctx context.Context, traceID string) (jaegerTrace, error) {
	var a jaegerAnswer[[]jaegerTrace]
	if err := j.get(ctx, "/api/traces/"+url.PathEscape(traceID), nil, &a); err != nil {
		return jaegerTrace{}, err
	}
	if len(a.Data) == 0 || len(a.Data[0].Spans) == 0 {
		return jaegerTrace{}, errTraceNotFound
	}
	return a.Data[0], nil
}

// ByMessageID returns the traces with a span whose messaging.message.id
// is id, newest first: the search of the query API needs a service, so
// each service Jaeger knows is searched (fpmq-caller, fpmq-daemon, or
// the names OTEL_SERVICE_NAME gave them).
func (j *jaeger) ByMessageID(ctx context.Context, id string) ([]jaegerTrace, error) {
	var services jaegerAnswer[[]string]
	if err := j.get(ctx, "/api/services", nil, &services); err != nil {
		if errors.Is(err, errTraceNotFound) {
			return nil, fmt.Errorf("no /api/services at %s: is CONSOLE_JAEGER_URL Jaeger's query API (port 16686)?", j.base.Redacted())
		}
		return nil, err
	}
	tags, _ := json.Marshal(map[string]string{attrMessageID: id}) // a map of strings: no error
	var found []jaegerTrace
	for _, service := range services.Data {
		var a jaegerAnswer[[]jaegerTrace]
		q := url.Values{"service": {service}, "tags": {string(tags)}, "limit": {strconv.Itoa(maxTraces)}}
		if err := j.get(ctx, "/api/traces", q, &a); err != nil && !errors.Is(err, errTraceNotFound) {
			return nil, err
		}
		for _, t := range a.Data {
			if !slices.ContainsFunc(found, func(f jaegerTrace) bool { return f.TraceID == t.TraceID }) {
				found = append(found, t)
			}
		}
	}
	slices.SortFunc(found, func(a, b jaegerTrace) int { return cmp.Compare(b.start(), a.start()) })
	return found[:min(len(found), maxTraces)], nil
}

// start is the trace's earliest span start, in µs.
func (t jaegerTrace) start() int64 {
	var first int64
	for i, s := range t.Spans {
		if i == 0 || s.StartTime < first {
			first = s.StartTime
		}
	}
	return first
}

// tag returns the span's attribute key as text, or "".
func (s jaegerSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			switch v := t.Value.(type) {
			case string:
				return v
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			default:
				return fmt.Sprint(v)
			}
		}
	}
	return ""
}

// parent returns the id of the span's parent in its own trace, or "".
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// shownTrace is a trace as the page draws it: a waterfall of its spans.
type shownTrace struct {
	ID       string
	Start    time.Time
	Duration time.Duration
	Spans    []shownSpan
}

// shownSpan is one row of the waterfall. Left and Width place its bar, in
// thousandths of the trace's duration.
type shownSpan struct {
	ID, Service, Name, Kind string
	Depth                   int
	Offset, Duration        time.Duration
	Left, Width             int
	Error                   bool
	Attempt, Outcome        string
	Reason, Status          string
	Wait, Worker            string // ms, as the daemon wrote them
	MessageID               string
	Tags                    []field
	Links                   []string // the other traces it refers to: a replayed job's original
}

// barScale is the waterfall's width in the bars' units.
const barScale = 1000

// showTrace turns t into its waterfall: each span under its parent (depth
// first, siblings by start), its offset from the trace's start, its
// duration, and its attributes, sorted by name.
func showTrace(t jaegerTrace) shownTrace {
	st := shownTrace{ID: t.TraceID}
	if len(t.Spans) == 0 {
		return st
	}
	start, end := t.start(), int64(0)
	for _, s := range t.Spans {
		end = max(end, s.StartTime+s.Duration)
	}
	total := max(end-start, 1)
	st.Start = time.UnixMicro(start)
	st.Duration = time.Duration(total) * time.Microsecond

	ids := map[string]bool{}
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	children := map[string][]jaegerSpan{}
	for _, s := range t.Spans {
		p := s.parent()
		if !ids[p] {
			p = "" // its parent is not in the trace (yet): a root here
		}
		children[p] = append(children[p], s)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		kids := children[parent]
		slices.SortStableFunc(kids, func(a, b jaegerSpan) int {
			return cmp.Or(cmp.Compare(a.StartTime, b.StartTime), cmp.Compare(a.tag(attrAttempt), b.tag(attrAttempt)))
		})
		for _, s := range kids {
			st.Spans = append(st.Spans, showSpan(t, s, depth, start, total))
			if depth < 32 { // a malformed trace's cycle ends here
				walk(s.SpanID, depth+1)
			}
		}
	}
	walk("", 0)
	return st
}

// showSpan is one row: s of t, at depth, placed against the trace's start
// and total duration (µs).
func showSpan(t jaegerTrace, s jaegerSpan, depth int, start, total int64) shownSpan {
	r := shownSpan{
		ID: s.SpanID, Service: t.Processes[s.ProcessID].ServiceName, Name: s.OperationName,
		Kind: s.tag("span.kind"), Depth: depth,
		Offset:   time.Duration(s.StartTime-start) * time.Microsecond,
		Duration: time.Duration(s.Duration) * time.Microsecond,
		Error:    s.tag("error") == "true" || s.tag("otel.status_code") == "ERROR",
		Attempt:  s.tag(attrAttempt), Outcome: s.tag(attrOutcome), Reason: s.tag(attrReason),
		Status: s.tag(attrStatus), Wait: s.tag(attrWaitMS), Worker: s.tag(attrWorkerMS),
		MessageID: s.tag(attrMessageID),
	}
	r.Left = int((s.StartTime - start) * barScale / total)
	r.Width = max(int(s.Duration*barScale/total), 8) // a span too short to see still shows, 2 px or so
	r.Left = min(r.Left, barScale-r.Width)
	for _, ref := range s.References {
		if ref.TraceID != s.TraceID && ref.TraceID != "" && !slices.Contains(r.Links, ref.TraceID) {
			r.Links = append(r.Links, ref.TraceID)
		}
	}
	for _, tg := range s.Tags {
		r.Tags = append(r.Tags, field{tg.Key, s.tag(tg.Key)})
	}
	slices.SortFunc(r.Tags, func(a, b field) int { return cmp.Compare(a.Name, b.Name) })
	return r
}

// traceData is the trace page's.
type traceData struct {
	On     bool   // CONSOLE_JAEGER_URL is set
	Query  string // the id asked for, as typed
	Error  string
	Trace  *shownTrace
	Others []traceLink // the other traces of the message id
}

// traceLink names a trace of the message id asked for.
type traceLink struct {
	ID    string
	Start time.Time
	Spans int
}

// tracePage shows a job's trace, found by a trace id or by its message
// id (?id=), drawn from Jaeger's query API. It never fails without saying
// why: tracing off, a bad id, an id Jaeger does not know and an
// unreachable Jaeger each get the page with a message.
func (s *server) tracePage(w http.ResponseWriter, r *http.Request) {
	d := traceData{On: s.jaeger != nil, Query: strings.TrimSpace(r.URL.Query().Get("id"))}
	status := http.StatusOK
	switch {
	case !d.On:
		d.Error = "Tracing is off in the console: set CONSOLE_JAEGER_URL to Jaeger's query API (the tracing profile of compose.yaml does)."
		status = http.StatusNotFound
	case d.Query == "":
	case checkText("id", d.Query) != nil:
		d.Error = checkText("id", d.Query).Error()
		status = http.StatusBadRequest
	default:
		status = s.findTrace(r.Context(), &d)
	}
	title := "Traces"
	if d.Trace != nil {
		title = "Trace " + d.Trace.ID
	}
	s.render(w, r, status, "trace", page{Title: title, Nav: "trace", Data: d})
}

// findTrace fills d with the trace d.Query names: a trace id, else a
// message id, and returns the page's status.
func (s *server) findTrace(ctx context.Context, d *traceData) int {
	ctx, cancel := context.WithTimeout(ctx, 2*jaegerTimeout)
	defer cancel()
	var traces []jaegerTrace
	if id := strings.ToLower(d.Query); traceIDPattern.MatchString(id) {
		t, err := s.jaeger.Trace(ctx, id)
		switch {
		case err == nil:
			traces = []jaegerTrace{t}
		case !errors.Is(err, errTraceNotFound):
			return s.jaegerFailed(d, err)
		}
		// Not a trace id Jaeger knows: a message id of hex digits, perhaps.
	}
	if traces == nil {
		var err error
		if traces, err = s.jaeger.ByMessageID(ctx, d.Query); err != nil {
			return s.jaegerFailed(d, err)
		}
	}
	if len(traces) == 0 {
		d.Error = fmt.Sprintf("Jaeger has no trace with the id or message id %q: spans reach it seconds after a job ends, and Jaeger keeps them in memory only (a restart loses them) and for the last 2 days only; a job published with tracing off has none.", d.Query)
		return http.StatusNotFound
	}
	shown := showTrace(traces[0])
	d.Trace = &shown
	for _, t := range traces[1:] {
		d.Others = append(d.Others, traceLink{ID: t.TraceID, Start: time.UnixMicro(t.start()), Spans: len(t.Spans)})
	}
	return http.StatusOK
}

// jaegerFailed logs err and puts it on the page: Jaeger is a peer the
// console depends on, so its failure is a 502.
func (s *server) jaegerFailed(d *traceData, err error) int {
	s.log.Warn().Err(err).Str("id", d.Query).Msg("trace page: ask Jaeger")
	d.Error = err.Error()
	return http.StatusBadGateway
}
