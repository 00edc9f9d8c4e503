package metrics

import (
	"strings"
	"testing"

	"github.com/fpmq/fpmq/services/internal/queuepolicy"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

// TestPolicyCollector checks fpmq_queue_policy_ok, one series per queue
// that exists, and fpmq_queue_policy_checked with the route's queue label.
func TestPolicyCollector(t *testing.T) {
	m := newMetrics()
	var verdicts []queuepolicy.Verdict
	last := func() ([]queuepolicy.Verdict, bool) { return verdicts, verdicts != nil }
	m.Registry.MustRegister(NewPolicyCollector(last))
	m.MustRegister(NewPolicyCheckedGauge(last))
	text := scrape(t, m)
	if strings.Contains(text, "fpmq_queue_policy_ok{") || !strings.Contains(text, `fpmq_queue_policy_checked{queue="commands"} 0`) {
		t.Errorf("before any check:\n%s", text)
	}
	verdicts = []queuepolicy.Verdict{
		{Queue: queuestat.Queue{Name: "commands", Role: queuestat.RoleJob}},
		{Queue: queuestat.Queue{Name: "commands.retry.1s", Role: queuestat.RoleRetry}, Missing: true},
		{Queue: queuestat.Queue{Name: "commands.dead", Role: queuestat.RoleDead}, Problems: []queuepolicy.Problem{{Key: "delivery-limit"}}},
	}
	text = scrape(t, m)
	for _, want := range []string{
		`fpmq_queue_policy_ok{queue="commands",role="job"} 1`,
		`fpmq_queue_policy_ok{queue="commands.dead",role="dead"} 0`,
		`fpmq_queue_policy_checked{queue="commands"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, "commands.retry.1s") {
		t.Errorf("a series for a missing queue:\n%s", text)
	}
}
