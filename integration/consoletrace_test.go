//go:build integration

package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fpmq/fpmq/integration/stack"
)

// TestConsoleTrace is the tracing profile as a person uses it: Jaeger (its
// image, docker/jaeger/) receives the spans of the caller and the daemon,
// a job fails twice and then succeeds, and in headless Chromium the
// operator signs into the console, opens the trace page from the menu,
// enters the job's message id and sees its trace: the caller's span and
// one span per attempt, as a waterfall, and a span's attributes; the
// page fits a narrow screen. Screenshots: integration/artifacts/console-trace*.png.
func TestConsoleTrace(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	root := repoRoot(t)
	jaegerImage, err := stack.BuildJaeger(context.Background(), root, "fpmq-test/", testTag(), cmp.Or(os.Getenv("GO_IMAGE"), "golang:1.26-trixie"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jaeger image built after %s", time.Since(start).Round(time.Second))
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(root, "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	if _, err := s.Jaeger(context.Background(), jaegerImage); err != nil {
		t.Fatal(err)
	}
	otel := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": stack.JaegerOTLP, "OTEL_BSP_SCHEDULE_DELAY": "100"}
	s.startDaemon(t, merged(otel, map[string]string{"SCRIPT_FILENAME": testScripts + "/trace.php", "MAX_ATTEMPTS": "3"}))

	// A job that fails twice, then succeeds; the script's log names its
	// message id, which the caller does not print.
	if code, out := s.runCaller(t, otel, "--type", "flaky", "--json", `{"job":"trace-page","fail_until":2}`); code != 0 {
		t.Fatalf("caller: exit %d:\n%s", code, out)
	}
	var id string
	eventually(t, settleTimeout, "the job's third attempt", func() bool {
		id = s.thirdAttemptOf(t, "trace-page")
		return id != ""
	})

	c := &consoleRun{testStack: s, passwords: map[string]string{consoleOperator: "operator-pw-" + randomWord()}}
	console := s.run(t, s.Console, stack.Run{Env: map[string]string{
		"CONSOLE_OPERATOR_USER":     consoleOperator,
		"CONSOLE_OPERATOR_PASSWORD": c.passwords[consoleOperator],
		"CONSOLE_JAEGER_URL":        stack.JaegerQuery,
	}})
	if c.base, err = console.PortEndpoint(context.Background(), stack.ConsolePort, "http"); err != nil {
		t.Fatal(err)
	}
	ctx := c.browser(t)
	t.Logf("stack, job and console done after %s", time.Since(start).Round(time.Second))

	run(t, ctx, "sign in and open the trace page from the menu",
		chromedp.Navigate(c.base+"/signin"), chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SetValue(chromedp.ID("user"), consoleOperator),
		chromedp.SetValue(chromedp.ID("password"), c.passwords[consoleOperator]),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("health")),
		chromedp.Click(chromedp.CSS(`nav a[href="/trace"]`)), chromedp.WaitVisible(chromedp.ID("trace-query")),
	)
	labelled(t, ctx, "trace")
	// The daemon exports its last span a moment after the job ends: the
	// page is asked again until Jaeger has all four.
	rows := func() int {
		n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#trace tbody tr").length`))
		return n
	}
	eventually(t, settleTimeout, "the job's four spans on the trace page", func() bool {
		run(t, ctx, "find the trace by the message id",
			chromedp.SetValue(chromedp.ID("trace-query"), id),
			chromedp.Submit(chromedp.ID("trace-query")),
			chromedp.WaitVisible(chromedp.CSS("#trace-id, #trace-error")),
		)
		return rows() == 4
	})

	if got := text(t, ctx, "#trace-id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("trace id %q", got)
	}
	if got := text(t, ctx, `#trace tr[data-kind="producer"]`); !strings.Contains(got, "fpmq-caller") || !strings.Contains(got, "send commands") {
		t.Errorf("the caller's row: %q", got)
	}
	attempts := value(t, ctx, "the attempts' rows", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#trace tr[data-kind="consumer"]')].map(r => r.querySelector(".attempt").textContent + " " + r.querySelector(".outcome").textContent + " " + r.className)`))
	if want := []string{"1 retried span failed", "2 retried span failed", "3 succeeded span"}; strings.Join(attempts, ",") != strings.Join(want, ",") {
		t.Errorf("attempts %q, want %q", attempts, want)
	}
	if got := text(t, ctx, `#trace tr[data-kind="consumer"]:last-child`); !strings.Contains(got, "status 200") || !strings.Contains(got, "+") {
		t.Errorf("the last attempt's row: %q", got)
	}
	bars := value(t, ctx, "the bars", chromedp.Evaluate[[]int](`[...document.querySelectorAll("#trace svg.bar rect")].map(r => +r.getAttribute("x"))`))
	if len(bars) != 4 || bars[1] >= bars[2] || bars[2] >= bars[3] {
		t.Errorf("bars start at %v: want the attempts one after another", bars)
	}
	shot(t, ctx, "trace")
	// A span's attributes open under its name: the message id searched for.
	run(t, ctx, "open the first attempt's attributes", chromedp.Click(chromedp.CSS(`#trace tr[data-kind="consumer"] summary`)))
	if got := text(t, ctx, `#trace tr[data-kind="consumer"] details dl`); !strings.Contains(got, "messaging.message.id\n"+id) || !strings.Contains(got, "fpmq.attempt\n1\n") {
		t.Errorf("the first attempt's attributes: %q", got)
	}
	shot(t, ctx, "trace-attributes")

	run(t, ctx, "open the trace 375 px wide",
		chromedp.EmulateViewport(narrowWidth, 800, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(c.base+"/trace?id="+id), chromedp.WaitVisible(chromedp.ID("trace-id")))
	checkNarrow(t, ctx, "/trace")
	shot(t, ctx, "trace-narrow")
	t.Logf("done after %s", time.Since(start).Round(time.Second))
}

// thirdAttemptOf returns the message id of the job named job once
// testdata/php/trace.php ran its third attempt, or "".
func (s *testStack) thirdAttemptOf(t *testing.T, job string) string {
	t.Helper()
	lines, err := s.LogLines(context.Background(), traceScriptLog)
	if err != nil {
		return ""
	}
	for _, line := range lines {
		var r traceRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Job == job && r.Attempt == 3 {
			return r.ID
		}
	}
	return ""
}
