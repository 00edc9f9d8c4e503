package journal

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestFailuresNewestFirstWithinTheBound(t *testing.T) {
	j := New(3, 10)
	for i := range 5 {
		j.Observe(fmt.Sprintf("m%d", i), "SendMail", outcome.Result{Outcome: outcome.Retried, Attempt: i + 1, Status: 500, Stderr: "PHP Warning: boom", Err: errors.New("status 500")}, t0.Add(time.Duration(i)*time.Second))
	}
	j.Observe("ok", "SendMail", outcome.Result{Outcome: outcome.Succeeded}, t0)
	got := j.Failures()
	if len(got) != 3 || got[0].MessageID != "m4" || got[2].MessageID != "m2" {
		t.Fatalf("failures %+v, want m4, m3, m2", got)
	}
	if f := got[0]; f.Attempt != 5 || f.Outcome != "retried" || f.Stderr != "PHP Warning: boom" || f.Error != "status 500" || f.Reason != "" {
		t.Errorf("failure %+v", f)
	}
}

func TestNamesCountOutcomesAndRunTime(t *testing.T) {
	j := New(10, 10)
	j.Observe("a", "Report", outcome.Result{Outcome: outcome.Succeeded, Ran: true, WorkerTime: 2 * time.Second}, t0)
	j.Observe("b", "Report", outcome.Result{Outcome: outcome.DeadLettered, Reason: outcome.ReasonRejected, Ran: true, WorkerTime: time.Second}, t0)
	j.Observe("c", "Report", outcome.Result{Outcome: outcome.Requeued}, t0) // no attempt: not counted
	j.Observe("d", "", outcome.Result{Outcome: outcome.Succeeded, Ran: true, WorkerTime: time.Second}, t0)
	names := j.Names()
	if len(names) != 2 || names[0].Name != "" || names[1].Name != "Report" {
		t.Fatalf("names %+v, want \"\" and Report", names)
	}
	r := names[1]
	if r.Succeeded != 1 || r.Failed != 1 || r.DeadLettered != 1 || r.Runs != 2 || r.RunSeconds != 3 || r.MaxRun != 2 {
		t.Errorf("Report %+v", r)
	}
	if f := j.Failures(); len(f) != 1 || f[0].Reason != outcome.ReasonRejected || f[0].Outcome != "dead-lettered" {
		t.Errorf("failures %+v, want the dead-lettered one with its reason", f)
	}
}

func TestNamesPastTheBoundAreCountedTogether(t *testing.T) {
	j := New(0, 2)
	for i := range 5 {
		j.Observe("m", fmt.Sprintf("Job%d", i), outcome.Result{Outcome: outcome.Succeeded}, t0)
	}
	names := j.Names()
	if len(names) != 3 || names[2].Name != OtherNames || names[2].Succeeded != 3 {
		t.Fatalf("names %+v, want Job0, Job1 and 3 under %q", names, OtherNames)
	}
	if f := j.Failures(); len(f) != 0 {
		t.Errorf("failures kept with a bound of 0: %+v", f)
	}
}

func TestLongErrorsAreCut(t *testing.T) {
	j := New(1, 1)
	long := strings.Repeat("é", outcome.StderrExcerpt) // 2 bytes each
	j.Observe("m", "n", outcome.Result{Outcome: outcome.Retried, Err: errors.New(long)}, t0)
	got := j.Failures()[0].Error
	if len(got) > outcome.StderrExcerpt || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("error of %d bytes kept as %d bytes (valid UTF-8: %v)", len(long), len(got), utf8.ValidString(got))
	}
}
