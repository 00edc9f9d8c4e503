package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRoutePageChartsTheHistory(t *testing.T) {
	tc := newTestConsole(t)
	now := time.Now()
	for i := range 5 {
		tc.console.history.record(snapshot{At: now.Add(time.Duration(i-5) * time.Minute), Daemons: []daemonView{
			daemonAt("a", "commands", float64(60*i), float64(i), []float64{float64(10 * i), float64(10 * i), float64(10 * i)}, 40-i),
		}})
	}
	c, _ := tc.signIn("victor", viewerPassword)
	status, body := tc.get(c, "/route?queue=commands")
	if status != http.StatusOK {
		t.Fatalf("route page: %d\n%s", status, body)
	}
	// Four points (the first sample has nothing to subtract), each chart
	// one polyline of four x,y pairs per line.
	polylines := regexp.MustCompile(`<polyline class="line (\w+)" points="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(polylines) != 5 { // done, failed, run p50 and p95, ready: no wait observed
		t.Fatalf("%d polylines, want 5 (no wait observed):\n%s", len(polylines), body)
	}
	for _, pl := range polylines {
		if n := len(strings.Fields(pl[2])); n != 4 {
			t.Errorf("line %s has %d points, want 4: %s", pl[1], n, pl[2])
		}
	}
	for _, want := range []string{"60.0 /min", "1.00 /min", "36 jobs", "4 points", `aria-label="Jobs per minute over the last 1h, latest: done 60.0 /min, failed 1.00 /min"`} {
		if !strings.Contains(body, want) {
			t.Errorf("route page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Error("the page has inline script or style, which the CSP forbids")
	}
	// The charts alone, for the page's refresh.
	status, part := tc.get(c, "/route/part?queue=commands&window=15m")
	if status != http.StatusOK || !strings.Contains(part, `id="chart-throughput"`) || strings.Contains(part, "<html") {
		t.Errorf("charts part: %d\n%s", status, part)
	}
}

func TestRoutePageOfNoRoute(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.signIn("victor", viewerPassword)
	status, body := tc.get(c, "/route?queue=nosuch")
	if status != http.StatusNotFound || !strings.Contains(body, "No daemon serves a route nosuch") {
		t.Errorf("unknown route: %d\n%s", status, body)
	}
	// A route the daemons serve but the history has not seen yet.
	status, body = tc.get(c, "/route?queue=commands&window=bogus")
	if status != http.StatusOK || !strings.Contains(body, `id="no-points"`) || !strings.Contains(body, "last 1h") {
		t.Errorf("a served route with no points: %d\n%s", status, body)
	}
}

func TestRouteChartsNeedASession(t *testing.T) {
	tc := newTestConsole(t)
	status, _ := tc.get(tc.client(), "/route/part?queue=commands")
	if status != http.StatusUnauthorized {
		t.Errorf("charts without a session: %d, want 401", status)
	}
}
