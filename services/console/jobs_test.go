package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/journal"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// twoDaemonsJournals are the journals of two daemons of commands and one
// of reports, and a daemon that did not answer.
func twoDaemonsJournals(now time.Time) []jobsAnswer {
	return []jobsAnswer{
		{Addr: "http://a:9090", Jobs: admin.Jobs{Queue: "commands",
			Failures: []journal.Failure{
				{At: now.Add(-time.Minute), MessageID: "c-old", Name: "SendMail", Attempt: 1, Outcome: "retried", Status: 500, Stderr: "PHP Warning: <b>boom</b>"},
			},
			Names: []journal.Name{{Name: "SendMail", Succeeded: 10, Failed: 2, Runs: 12, RunSeconds: 1.2, MaxRun: 0.5, Last: now}}}},
		{Addr: "http://b:9090", Jobs: admin.Jobs{Queue: "commands",
			Failures: []journal.Failure{
				{At: now.Add(-time.Second), MessageID: "c-new", Name: "SendMail", Attempt: 3, Outcome: "dead-lettered", Reason: "attempts-exhausted", Status: 500},
			},
			Names: []journal.Name{{Name: "SendMail", Succeeded: 5, Failed: 1, DeadLettered: 1, Runs: 6, RunSeconds: 0.6, MaxRun: 0.9, Last: now}}}},
		{Addr: "http://r:9090", Jobs: admin.Jobs{Queue: "reports",
			Failures: []journal.Failure{{At: now.Add(-30 * time.Second), MessageID: "r-1", Attempt: 1, Outcome: "retried"}},
			Names:    []journal.Name{{Name: "", Succeeded: 1}}}},
		{Addr: "http://gone:9090", Err: "unreachable"},
	}
}

func TestFailuresPageNewestFirstAcrossDaemons(t *testing.T) {
	tc := newTestConsole(t)
	tc.daemons.jobs = twoDaemonsJournals(time.Now())
	c, _ := tc.signIn("victor", viewerPassword)
	status, body := tc.get(c, "/failures")
	if status != http.StatusOK {
		t.Fatalf("failures: %d", status)
	}
	iNew, iR, iOld := strings.Index(body, "c-new"), strings.Index(body, ">r-1<"), strings.Index(body, ">c-old<")
	if iNew < 0 || iR < 0 || iOld < 0 || !(iNew < iR && iR < iOld) {
		t.Errorf("failures not newest first (c-new %d, r-1 %d, c-old %d):\n%s", iNew, iR, iOld, body)
	}
	for _, want := range []string{
		`href="/dead/job?queue=commands&amp;id=c-new"`, // a dead letter links to its page
		"dead-lettered (attempts-exhausted)",
		"PHP Warning: &lt;b&gt;boom&lt;/b&gt;", // stderr escaped
		"daemon http://gone:9090: unreachable",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("failures page lacks %q", want)
		}
	}
	// One route only, and the part the page redraws.
	_, part := tc.get(c, "/failures/part?queue=reports")
	if !strings.Contains(part, ">r-1<") || strings.Contains(part, "c-new") || strings.Contains(part, "<html") {
		t.Errorf("the reports route's part:\n%s", part)
	}
}

func TestNamesPageSumsARoutesDaemons(t *testing.T) {
	tc := newTestConsole(t)
	tc.daemons.jobs = twoDaemonsJournals(time.Now())
	c, _ := tc.signIn("victor", viewerPassword)
	_, body := tc.get(c, "/jobs")
	row := body[strings.Index(body, ">SendMail<"):]
	row = row[:strings.Index(row, "</tr>")]
	// 15 done, 3 failed (1 dead-lettered) of 18: 16.7 %; 1.8 s over 18
	// runs: 100 ms mean; longest 900 ms.
	for _, want := range []string{">15<", ">3<", ">1<", "16.7 %", "100ms", "900ms"} {
		if !strings.Contains(row, want) {
			t.Errorf("SendMail's row lacks %q: %s", want, row)
		}
	}
	if !strings.Contains(body, "<em>no name</em>") {
		t.Error("a job without a name is not shown as such")
	}
}

// TestDaemonSourceJobsFromRealEndpoints reads the journal from the
// daemons' real admin endpoints.
func TestDaemonSourceJobsFromRealEndpoints(t *testing.T) {
	j := journal.New(10, 10)
	j.Observe("m1", "Report", outcome.Result{Outcome: outcome.Retried, Attempt: 1, Status: 500, Stderr: "PHP Fatal error"}, time.Now())
	peer := newDaemonPeer(t, "reports", 1)
	peer.jobs = func() admin.Jobs { return admin.Jobs{Queue: "reports", Failures: j.Failures(), Names: j.Names()} }
	src := newDaemonSource([]string{peer.srv.URL, "http://127.0.0.1:1"}, "0123456789abcdef0123", time.Second, time.Minute)
	got := src.Jobs(context.Background())
	if got[0].Err != "" || len(got[0].Jobs.Failures) != 1 || got[0].Jobs.Failures[0].Stderr != "PHP Fatal error" {
		t.Errorf("first daemon: %+v", got[0])
	}
	if got[1].Err == "" {
		t.Error("an unreachable daemon gave no error")
	}
}
