package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fpmq/fpmq/services/internal/admin"
)

func TestDelayedPage(t *testing.T) {
	tc := newTestConsole(t)
	tc.daemons.mu.Lock()
	rt := &tc.daemons.snap.Daemons[0].Status.Routes[0]
	rt.Delayed = intp(5)
	rt.DelayQueues = []admin.RetryQueue{
		{Queue: "commands.delay.1s", Delay: "1s", Ready: intp(0)},
		{Queue: "commands.delay.2s", Delay: "2s", Ready: intp(0)},
		{Queue: "commands.delay.1h8m16s", Delay: "1h8m16s", Ready: intp(5)},
	}
	tc.daemons.mu.Unlock()
	c, _ := tc.signIn("victor", viewerPassword)
	status, body := tc.get(c, "/delayed")
	if status != http.StatusOK {
		t.Fatalf("delayed: %d", status)
	}
	for _, want := range []string{`id="delayed-commands"`, `<span class="total">5</span> waiting`, "within 1h8m16s", "<code>commands.delay.2s</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("delayed page lacks %q:\n%s", want, body)
		}
	}
	_, part := tc.get(c, "/delayed/part")
	if !strings.Contains(part, "within 1h8m16s") || strings.Contains(part, "<html") {
		t.Errorf("the part:\n%s", part)
	}
}
