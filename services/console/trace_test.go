package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fake Jaeger's job: published by the caller, failed twice, then done.
const (
	fakeTraceID   = "4bf92f3577b34da6a3ce929d0e0e4736"
	fakeMessageID = "9e1f0c2d3b4a59687766554433221100"
)

// fakeJaeger serves a query API that knows one trace, fakeTraceID, of the
// job fakeMessageID, and counts the searches it was asked.
type fakeJaeger struct {
	*httptest.Server
	searches []url.Values
}

func newFakeJaeger(t *testing.T) *fakeJaeger {
	t.Helper()
	f := &fakeJaeger{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"data":["fpmq-caller","fpmq-daemon"],"total":2,"limit":0,"offset":0,"errors":null}`)
	})
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != fakeTraceID {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`)
			return
		}
		fmt.Fprintf(w, `{"data":[%s],"total":0,"limit":0,"offset":0,"errors":null}`, fakeTrace)
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		f.searches = append(f.searches, r.URL.Query())
		var tags map[string]string
		if err := json.Unmarshal([]byte(r.URL.Query().Get("tags")), &tags); err != nil || r.URL.Query().Get("service") == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"data":null,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}`)
			return
		}
		if tags["messaging.message.id"] == fakeMessageID {
			// Each service finds the same trace: the console lists it once.
			fmt.Fprintf(w, `{"data":[%s],"total":1,"limit":0,"offset":0,"errors":null}`, fakeTrace)
			return
		}
		fmt.Fprint(w, `{"data":[],"total":0,"limit":0,"offset":0,"errors":null}`)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// fakeTrace is a trace as Jaeger's query API gives it: the caller's
// producer span at 0 for 2 ms, and three attempts under it, at 10, 300
// and 600 ms, of 50 ms each; the first two failed.
var fakeTrace = fmt.Sprintf(`{"traceID":%[1]q,"processes":{"p1":{"serviceName":"fpmq-caller","tags":[]},"p2":{"serviceName":"fpmq-daemon","tags":[]}},"spans":[
 %[2]s, %[3]s, %[4]s, %[5]s]}`, fakeTraceID,
	fakeSpan("c0ffee0000000001", "", "p1", "send commands", 1_000_000, 2_000, `{"key":"span.kind","type":"string","value":"producer"}`),
	fakeSpan("d00d000000000003", "c0ffee0000000001", "p2", "process commands", 1_600_000, 50_000, attemptTags(3, "succeeded", 200, 80)),
	fakeSpan("d00d000000000001", "c0ffee0000000001", "p2", "process commands", 1_010_000, 50_000, attemptTags(1, "retried", 500, 8)+`,{"key":"otel.status_code","type":"string","value":"ERROR"},{"key":"error","type":"bool","value":true}`),
	fakeSpan("d00d000000000002", "c0ffee0000000001", "p2", "process commands", 1_300_000, 50_000, attemptTags(2, "retried", 500, 210)+`,{"key":"error","type":"bool","value":true}`),
)

func fakeSpan(id, parent, process, name string, start, duration int64, tags string) string {
	refs := "[]"
	if parent != "" {
		refs = fmt.Sprintf(`[{"refType":"CHILD_OF","traceID":%q,"spanID":%q}]`, fakeTraceID, parent)
	}
	return fmt.Sprintf(`{"traceID":%q,"spanID":%q,"operationName":%q,"references":%s,"startTime":%d,"duration":%d,"tags":[{"key":"messaging.message.id","type":"string","value":%q},%s],"logs":[],"processID":%q,"warnings":null,"flags":1}`,
		fakeTraceID, id, name, refs, start, duration, fakeMessageID, tags, process)
}

func attemptTags(attempt int, outcome string, status, waitMS int) string {
	return fmt.Sprintf(`{"key":"span.kind","type":"string","value":"consumer"},{"key":"fpmq.attempt","type":"int64","value":%d},{"key":"fpmq.outcome","type":"string","value":%q},{"key":"fpmq.php_fpm.status","type":"int64","value":%d},{"key":"fpmq.queue.wait_ms","type":"int64","value":%d}`,
		attempt, outcome, status, waitMS)
}

// traceConsole is a test console with the trace page on Jaeger at base.
func traceConsole(t *testing.T, base string) *testConsole {
	t.Helper()
	tc := newTestConsole(t)
	tc.console.jaeger = newJaeger(base, time.Second)
	return tc
}

func TestShowTraceDrawsTheWaterfall(t *testing.T) {
	var tr jaegerTrace
	if err := json.Unmarshal([]byte(fakeTrace), &tr); err != nil {
		t.Fatal(err)
	}
	st := showTrace(tr)
	if st.ID != fakeTraceID || st.Duration != 650*time.Millisecond || len(st.Spans) != 4 {
		t.Fatalf("trace %s over %s with %d spans, want %s over 650ms with 4", st.ID, st.Duration, len(st.Spans), fakeTraceID)
	}
	want := []struct {
		name, attempt, outcome, status string
		depth, left, width             int
		offset                         time.Duration
		failed                         bool
	}{
		{"send commands", "", "", "", 0, 0, 8, 0, false}, // 3 units long: drawn 8, to be seen
		{"process commands", "1", "retried", "500", 1, 15, 76, 10 * time.Millisecond, true},
		{"process commands", "2", "retried", "500", 1, 461, 76, 300 * time.Millisecond, true},
		{"process commands", "3", "succeeded", "200", 1, 923, 76, 600 * time.Millisecond, false},
	}
	for i, w := range want {
		s := st.Spans[i]
		if s.Name != w.name || s.Attempt != w.attempt || s.Outcome != w.outcome || s.Status != w.status || s.Depth != w.depth ||
			s.Left != w.left || s.Width != w.width || s.Offset != w.offset || s.Error != w.failed {
			t.Errorf("span %d: %+v\nwant %+v", i, s, w)
		}
	}
	if s := st.Spans[2]; s.Wait != "210" || s.Service != "fpmq-daemon" || s.MessageID != fakeMessageID {
		t.Errorf("attempt 2: wait %q, service %q, message id %q", s.Wait, s.Service, s.MessageID)
	}
}

func TestShowTraceOddInput(t *testing.T) {
	// No spans; a span whose parent is missing (a root here); a zero-long
	// trace; a cycle of parents, which must not hang.
	if st := showTrace(jaegerTrace{TraceID: "ab"}); len(st.Spans) != 0 {
		t.Errorf("an empty trace drew %d spans", len(st.Spans))
	}
	orphan := jaegerTrace{TraceID: "t", Spans: []jaegerSpan{{TraceID: "t", SpanID: "a", StartTime: 5}}}
	orphan.Spans[0].References = append(orphan.Spans[0].References, struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}{"CHILD_OF", "t", "gone"})
	orphan.Spans[0].References = append(orphan.Spans[0].References, struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}{"FOLLOWS_FROM", "original", "x"})
	st := showTrace(orphan)
	if len(st.Spans) == 1 && !slices.Equal(st.Spans[0].Links, []string{"original"}) {
		t.Errorf("links %v, want the replay's original trace", st.Spans[0].Links)
	}
	if len(st.Spans) != 1 || st.Spans[0].Depth != 0 || st.Spans[0].Width < 1 || st.Spans[0].Left+st.Spans[0].Width > barScale {
		t.Errorf("orphan span: %+v", st.Spans)
	}
}

func TestTracePageByMessageID(t *testing.T) {
	jg := newFakeJaeger(t)
	tc := traceConsole(t, jg.URL)
	c, _ := tc.signIn("victor", viewerPassword) // the read-only role may look
	status, body := tc.get(c, "/trace?id="+fakeMessageID)
	if status != http.StatusOK {
		t.Fatalf("trace page: %d\n%s", status, body)
	}
	for _, want := range []string{`id="trace-id">` + fakeTraceID, "send commands", "status 500", "status 200", "succeeded", "210 ms",
		`data-kind="producer"`, `<rect x="923" y="1" width="76"`, `href="/trace"`, "4 spans over 650 ms"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(body, `data-kind="consumer"`); n != 3 {
		t.Errorf("%d attempt rows, want 3", n)
	}
	if n := len(regexp.MustCompile(`<tr class="span failed"`).FindAllString(body, -1)); n != 2 {
		t.Errorf("%d failed rows, want 2", n)
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<script>") {
		t.Error("the page has inline style or script, which the CSP forbids")
	}
	// One search per service Jaeger knows, by the message id's attribute.
	if len(jg.searches) != 2 || jg.searches[0].Get("service") != "fpmq-caller" || !strings.Contains(jg.searches[1].Get("tags"), `"messaging.message.id":"`+fakeMessageID) {
		t.Errorf("searches %v", jg.searches)
	}
}

func TestTracePageByTraceID(t *testing.T) {
	jg := newFakeJaeger(t)
	tc := traceConsole(t, jg.URL)
	c, _ := tc.signIn("alice", operatorPassword)
	status, body := tc.get(c, "/trace?id="+strings.ToUpper(fakeTraceID))
	if status != http.StatusOK || !strings.Contains(body, `id="trace-id">`+fakeTraceID) {
		t.Fatalf("trace page by trace id: %d\n%s", status, body)
	}
	if len(jg.searches) != 0 {
		t.Errorf("a known trace id still searched: %v", jg.searches)
	}
}

func TestTracePageSaysWhatIsWrong(t *testing.T) {
	jg := newFakeJaeger(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	notJaeger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>hello</html>") }))
	t.Cleanup(notJaeger.Close)
	down404 := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(down404.Close)
	for _, tt := range []struct {
		name, jaeger, query string
		status              int
		says                string
	}{
		{"no id yet", jg.URL, "", http.StatusOK, "Enter a job's message id"},
		{"unknown message id", jg.URL, "no-such-job", http.StatusNotFound, "Jaeger has no trace with the id or message id &#34;no-such-job&#34;"},
		{"unknown trace id", jg.URL, strings.Repeat("ab", 16), http.StatusNotFound, "Jaeger has no trace"},
		{"control characters", jg.URL, "a%01b", http.StatusBadRequest, "id: no control characters"},
		{"too long", jg.URL, strings.Repeat("x", 300), http.StatusBadRequest, "id: at most 200 bytes"},
		{"markup is escaped", jg.URL, "<b>x</b>", http.StatusNotFound, "&#34;&lt;b&gt;x&lt;/b&gt;&#34;"},
		{"Jaeger unreachable", down.URL, fakeMessageID, http.StatusBadGateway, "no answer from Jaeger at " + down.URL},
		{"not Jaeger", notJaeger.URL, fakeMessageID, http.StatusBadGateway, "not an answer of Jaeger&#39;s query API"},
		{"404 everywhere", down404.URL, fakeTraceID, http.StatusBadGateway, "no /api/services at " + down404.URL},
		{"tracing off", "", fakeMessageID, http.StatusNotFound, "Tracing is off in the console: set CONSOLE_JAEGER_URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := traceConsole(t, tt.jaeger)
			c, _ := tc.signIn("alice", operatorPassword)
			status, body := tc.get(c, "/trace?id="+strings.ReplaceAll(url.QueryEscape(tt.query), "%2501", "%01"))
			if status != tt.status || !strings.Contains(body, tt.says) {
				t.Errorf("status %d, want %d, saying %q:\n%s", status, tt.status, tt.says, body)
			}
			if !strings.Contains(body, "<h1>") {
				t.Error("not a page of the console")
			}
		})
	}
}

func TestTraceLinksOnlyWhenOn(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m1", "rejected"))
	c, _ := tc.signIn("alice", operatorPassword)
	for _, path := range []string{"/", "/dead/job?queue=commands&id=m1"} {
		if _, body := tc.get(c, path); strings.Contains(body, "/trace") {
			t.Errorf("%s links the trace page with tracing off", path)
		}
	}
	tc.console.jaeger = newJaeger("http://jaeger:16686", time.Second)
	if _, body := tc.get(c, "/"); !strings.Contains(body, `<a href="/trace">Traces</a>`) {
		t.Error("the menu lacks the trace page")
	}
	if _, body := tc.get(c, "/dead/job?queue=commands&id=m1"); !strings.Contains(body, `href="/trace?id=m1"`) {
		t.Error("a dead letter's page does not link its trace")
	}
}

func TestCheckJaegerURL(t *testing.T) {
	for v, ok := range map[string]bool{
		"": true, "http://jaeger:16686": true, "https://jaeger.example/query/": true,
		"jaeger:16686": false, "ftp://jaeger": false, "http://": false, "http://jaeger:16686?x=1": false, "http://u:p@jaeger": false,
	} {
		if err := checkJaegerURL(v); (err == nil) != ok {
			t.Errorf("%q: %v", v, err)
		}
	}
}
