//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The console's users in the test, and the daemons' admin token.
const (
	consoleOperator = "olga"
	consoleViewer   = "vera"
	consoleToken    = "console-test-admin-token-0123"
)

// consoleRun is the console under test and the ways to reach it.
type consoleRun struct {
	*testStack
	base      string // http://127.0.0.1:PORT
	passwords map[string]string
	console   *testcontainers.DockerContainer
}

// TestConsole drives the web console (services/console) in headless
// Chromium on one real stack: two routes' daemons, the console with its
// own RabbitMQ user, and jobs that a real daemon ran and dead-lettered.
// Every page shows that data; a replay brings a dead job back and the
// daemon runs it; a purge deletes exactly the chosen jobs; a pause stops
// new jobs and a resume restarts them; anonymous requests, the read-only
// user's actions and forged posts are refused and change nothing; the
// pages work from the keyboard and on a 375 px wide screen. Screenshots go
// to integration/artifacts/.
func TestConsole(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	c := startConsole(t)
	ctx := c.browser(t)
	t.Logf("stack and console up after %s", time.Since(start).Round(time.Second))

	t.Run("anonymous, read-only and forged requests are refused and change nothing", func(t *testing.T) {
		c.refusals(t)
	})
	t.Run("sign-in works from the keyboard", func(t *testing.T) {
		c.signInByKeyboard(t, ctx)
	})
	t.Run("the overview shows the routes and stays current", func(t *testing.T) {
		c.overview(t, ctx)
	})
	t.Run("the dead letters: list, filter, search, one job whole", func(t *testing.T) {
		c.deadLetters(t, ctx)
	})
	t.Run("a replay brings a dead job back and the daemon runs it", func(t *testing.T) {
		c.replay(t, ctx)
	})
	t.Run("a purge deletes exactly the chosen jobs, after a confirmation", func(t *testing.T) {
		c.purge(t, ctx)
	})
	t.Run("pause stops new jobs, resume restarts them", func(t *testing.T) {
		c.pauseResume(t, ctx)
	})
	t.Run("the delayed jobs page shows a job waiting in its delay queue", func(t *testing.T) {
		c.delayed(t, ctx)
	})
	t.Run("a route's page charts its jobs over time and keeps them across a restart", func(t *testing.T) {
		c.routeOverTime(t, ctx)
	})
	t.Run("the first page of 100,000 dead letters answers in under 1 s", func(t *testing.T) {
		c.speed(t)
	})
	// Last: its job is dead-lettered after its retry, which would change
	// the counts the subtests before check.
	t.Run("recent failures show the script's stderr, job names their figures", func(t *testing.T) {
		c.failuresAndNames(t, ctx)
	})
	// Last in the browser: the narrow screen's emulation stays on.
	t.Run("a narrow screen needs no sideways scrolling", func(t *testing.T) {
		c.narrow(t, ctx)
	})
	t.Logf("done after %s", time.Since(start).Round(time.Second))
}

// startConsole starts the stack (the commands route on misbehave.php,
// which the test makes fail on purpose, and the reports route), has the
// daemon dead-letter four jobs and run five, and starts the console.
func startConsole(t *testing.T) *consoleRun {
	t.Helper()
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	// One job at a time, so that jobs die in the order they are published.
	commands := s.startDaemon(t, map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": "2", "CONCURRENCY": "1", "ADMIN_TOKEN": consoleToken})
	reports := s.startReportsDaemon(t, map[string]string{"ADMIN_TOKEN": consoleToken})
	s.publishAs(t, "ok-1", `{"do":"ok"}`, "ok-2", `{"do":"ok"}`, "ok-3", `{"do":"ok"}`, "exh-1", `{"do":"broken"}`)
	// exh-1 dies after its retry: the rejected ones after it, in order.
	eventually(t, settleTimeout, "exh-1 dead-lettered", func() bool { return s.queue(t, deadQueue).Ready == 1 })
	s.publishAs(t, "rej-1", `{"do":"broken","status":"422"}`, "rej-2", `{"do":"broken","status":"422"}`, "rej-3", `{"do":"broken","status":"422"}`)
	eventually(t, settleTimeout, "four jobs dead-lettered", func() bool { return s.queue(t, deadQueue).Ready == 4 })

	c := &consoleRun{testStack: s, passwords: map[string]string{consoleOperator: "operator-pw-" + randomWord(), consoleViewer: "viewer-pw-" + randomWord()}}
	// The history's directory, writable by the console's user (uid 10001).
	state := t.TempDir()
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	c.console = s.run(t, s.Console, stack.Run{Binds: []string{state + ":/var/lib/fpmq-console"}, Env: map[string]string{
		"CONSOLE_DAEMONS":           daemonURL(t, commands) + "," + daemonURL(t, reports),
		"ADMIN_TOKEN":               consoleToken,
		"CONSOLE_OPERATOR_USER":     consoleOperator,
		"CONSOLE_OPERATOR_PASSWORD": c.passwords[consoleOperator],
		"CONSOLE_VIEWER_USER":       consoleViewer,
		"CONSOLE_VIEWER_PASSWORD":   c.passwords[consoleViewer],
		"CONSOLE_CACHE_TTL":         "1s",
		"CONSOLE_REFRESH":           "1s",
		"CONSOLE_HISTORY_STEP":      "1s",
		"CONSOLE_HISTORY_KEEP":      "1h",
		"CONSOLE_HISTORY_FILE":      "/var/lib/fpmq-console/history.json",
	}})
	c.base = c.endpoint(t)
	return c
}

// endpoint is the console's URL from the host, which changes when its
// container restarts.
func (c *consoleRun) endpoint(t *testing.T) string {
	t.Helper()
	endpoint, err := c.console.PortEndpoint(context.Background(), stack.ConsolePort, "http")
	if err != nil {
		t.Fatal(err)
	}
	return endpoint
}

// daemonURL is a daemon's METRICS_ADDR as the console reaches it: by its
// container's name on the stack's network.
func daemonURL(t *testing.T, d *testcontainers.DockerContainer) string {
	t.Helper()
	info, err := d.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + strings.TrimPrefix(info.Name, "/") + ":9090"
}

// publishAs publishes jobs to the job queue, in order: pairs of a
// message id and a body.
func (s *testStack) publishAs(t *testing.T, idsAndBodies ...string) {
	t.Helper()
	var ids []string
	var bodies [][]byte
	for i := 0; i+1 < len(idsAndBodies); i += 2 {
		ids = append(ids, idsAndBodies[i])
		bodies = append(bodies, []byte(idsAndBodies[i+1]))
	}
	s.publishBodies(t, bodies, func(i int) string { return ids[i] })
}

func randomWord() string { return fmt.Sprintf("%x", time.Now().UnixNano()) }

// browser starts headless Chromium for the test, with a desktop window.
func (c *consoleRun) browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, and must not have a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs browser actions within a minute, or fails the test.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action that gives a value, within a minute.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the text of the first element the CSS selector sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(value(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// textNow returns the text of the first element the CSS selector sel
// matches, or "" if there is none, or no page, at the moment: for
// polling while a page loads.
func textNow(ctx context.Context, sel string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	if err != nil {
		return ""
	}
	return s
}

// shot saves a screenshot of the whole page as integration/artifacts/console-NAME.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(repoRoot(t), "integration", "artifacts", "console-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// labelled checks that every visible form control of the page has a
// label, its own or an aria-label, so that a screen reader names it.
func labelled(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	unlabelled := value(t, ctx, "find unlabelled controls", chromedp.Evaluate[[]string](`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label")).map(e => e.outerHTML)`))
	if len(unlabelled) > 0 {
		t.Errorf("%s: controls without a label: %v", page, unlabelled)
	}
}

func (c *consoleRun) signInByKeyboard(t *testing.T, ctx context.Context) {
	var order []string
	focused := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		id, err := chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.className || document.activeElement.tagName`)(ctx, tg)
		order = append(order, id)
		return err
	})
	run(t, ctx, "sign in with the keyboard",
		chromedp.Navigate(c.base+"/"), // anonymous: sent to the sign-in page
		chromedp.WaitVisible(chromedp.ID("user")),
		// From the top of the page, Tab goes through the skip link, the
		// user name, the password and the button, typing on the way.
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector(".skip").focus(), true`)(ctx, tg)
			return err
		}), focused,
		chromedp.KeyEvent(kb.Tab), focused,
		chromedp.KeyEvent(consoleOperator),
		chromedp.KeyEvent(kb.Tab), focused,
		chromedp.KeyEvent(c.passwords[consoleOperator]),
		chromedp.KeyEvent(kb.Tab), focused,
	)
	if want := []string{"skip", "user", "password", "BUTTON"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("focus went %v, want %v", order, want)
	}
	labelled(t, ctx, "sign-in")
	shot(t, ctx, "signin")
	run(t, ctx, "press Enter", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("health")))
	run(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
	skip := value(t, ctx, "the focused element", chromedp.Evaluate[string](`document.activeElement.textContent`))
	if skip != "Skip to content" {
		t.Errorf("the first Tab on the overview focuses %q, want the skip link", skip)
	}
}

func (c *consoleRun) overview(t *testing.T, ctx context.Context) {
	run(t, ctx, "open the overview", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible(chromedp.ID("route-commands")))
	for sel, want := range map[string]string{
		`[data-live="route.commands.dead"]`:    "4",
		`[data-live="route.commands.daemons"]`: "1 / 1",
		`[data-live="route.commands.state"]`:   "consuming",
		`[data-live="route.reports.daemons"]`:  "1 / 1",
		`[data-live="route.reports.dead"]`:     "0",
	} {
		if got := text(t, ctx, sel); got != want {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	// The daemon's rate counts the jobs it ran this last minute: 3 done.
	if got := text(t, ctx, `[data-live="route.commands.done"]`); got == "0.0" {
		t.Errorf("done per minute shows %s after 3 jobs ran", got)
	}
	if got := text(t, ctx, ".summary"); !strings.HasPrefix(got, "Something is wrong") || !strings.Contains(text(t, ctx, "#problems"), "commands: 4 dead letters") {
		t.Errorf("summary %q, problems %q: want the 4 dead letters named", got, text(t, ctx, "#problems"))
	}
	labelled(t, ctx, "overview")
	shot(t, ctx, "overview")

	// A job dead-lettered now shows without a reload.
	c.publishAs(t, "rej-4", `{"do":"broken","status":"422"}`)
	value(t, ctx, "mark the page", chromedp.Evaluate[string](`window.fpmqMarker = "same page"`))
	eventually(t, settleTimeout, "the overview's dead count to become 5 by itself", func() bool {
		return text(t, ctx, `[data-live="route.commands.dead"]`) == "5"
	})
	if marker := value(t, ctx, "read the mark", chromedp.Evaluate[string](`window.fpmqMarker || "reloaded"`)); marker != "same page" {
		t.Error("the page was reloaded to refresh")
	}
}

func (c *consoleRun) deadLetters(t *testing.T, ctx context.Context) {
	run(t, ctx, "open the dead letters", chromedp.Navigate(c.base+"/dead?queue=commands"), chromedp.WaitVisible(chromedp.ID("dead-total")))
	if got := text(t, ctx, "table.jobs tbody"); !containsInOrder(got, "exh-1", "rej-1", "rej-2", "rej-3", "rej-4") {
		t.Errorf("the list shows %q, want exh-1, rej-1, rej-2, rej-3, rej-4 in queue order", got)
	}
	if got := text(t, ctx, "#dead-total"); !strings.HasPrefix(got, "5 dead letters") {
		t.Errorf("total %q, want 5", got)
	}
	labelled(t, ctx, "dead letters")
	shot(t, ctx, "dead")

	// The reason filter, chosen in the form.
	run(t, ctx, "filter by reason",
		chromedp.SetValue(chromedp.ID("reason"), "attempts-exhausted"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
	// The list before the click has the same elements: wait for the new one.
	eventually(t, settleTimeout, "the filtered list", func() bool {
		return strings.Contains(textNow(ctx, "table.jobs caption"), "reason attempts-exhausted")
	})
	if got := text(t, ctx, "table.jobs tbody"); !strings.Contains(got, "exh-1") || strings.Contains(got, "rej-") {
		t.Errorf("filtered by attempts-exhausted: %q, want exh-1 alone", got)
	}
	// Search by id.
	run(t, ctx, "search by id", chromedp.Navigate(c.base+"/dead?queue=commands&id=rej-3"), chromedp.WaitVisible(chromedp.ID("dead-total")))
	if got := text(t, ctx, "table.jobs tbody"); !strings.Contains(got, "rej-3") || strings.Contains(got, "rej-1") {
		t.Errorf("search for rej-3: %q", got)
	}
	// One job whole, from its link.
	run(t, ctx, "open exh-1", chromedp.Navigate(c.base+"/dead?queue=commands"), chromedp.WaitVisible(chromedp.ID("dead-total")),
		chromedp.Click(chromedp.CSS(`a[href$="id=exh-1"]`)), chromedp.WaitVisible(chromedp.ID("job-body")))
	if got := text(t, ctx, "#job-reason"); got != "attempts-exhausted" {
		t.Errorf("exh-1's reason %q", got)
	}
	if got := text(t, ctx, "#job-body"); !strings.Contains(got, `"do": "broken"`) {
		t.Errorf("exh-1's body %q", got)
	}
	if got := text(t, ctx, "#job-headers"); !strings.Contains(got, "x-fpmq-attempts") || !strings.Contains(got, "x-fpmq-last-status") {
		t.Errorf("exh-1's headers %q", got)
	}
	shot(t, ctx, "job")
	if q := c.queue(t, deadQueue); q.Ready != 5 || q.Unacked != 0 {
		t.Errorf("after reading, %s holds %d ready and %d unacked, want 5 and 0", deadQueue, q.Ready, q.Unacked)
	}
}

func (c *consoleRun) replay(t *testing.T, ctx context.Context) {
	// The cause is fixed: from now on the broken jobs succeed.
	if code, out := execIn(t, c.PHP, "touch", fixedFile); code != 0 {
		t.Fatalf("touch %s: exit %d: %s", fixedFile, code, out)
	}
	before := len(c.misbehaveLines(t))
	run(t, ctx, "replay rej-1 from its page",
		chromedp.Navigate(c.base+"/dead/job?queue=commands&id=rej-1"), chromedp.WaitVisible(chromedp.ID("replay-one")),
		chromedp.Click(chromedp.ID("replay-one")), chromedp.WaitVisible(chromedp.ID("dead-total")))
	c.awaitFixedRuns(t, before, "rej-1")
	eventually(t, settleTimeout, "rej-1 gone from the dead letters", func() bool { return c.queue(t, deadQueue).Ready == 4 })
	eventually(t, settleTimeout, "the replay's progress on the page", func() bool {
		return strings.Contains(text(t, ctx, "ul.tasks"), "replayed 1 of 1 matching")
	})
}

func (c *consoleRun) purge(t *testing.T, ctx context.Context) {
	run(t, ctx, "choose rej-2 and exh-1, purge",
		chromedp.Navigate(c.base+"/dead?queue=commands"), chromedp.WaitVisible(chromedp.ID("dead-total")),
		chromedp.Click(chromedp.ID("pick-rej-2")), chromedp.Click(chromedp.ID("pick-exh-1")),
		chromedp.Click(chromedp.ID("purge-selected")), chromedp.WaitVisible(chromedp.ID("purge-count")))
	if got := text(t, ctx, "ul.purge-list"); !strings.Contains(got, "rej-2") || !strings.Contains(got, "exh-1") || strings.Contains(got, "rej-3") {
		t.Errorf("the confirmation lists %q, want rej-2 and exh-1 only", got)
	}
	shot(t, ctx, "purge-confirm")
	if q := c.queue(t, deadQueue); q.Ready != 4 {
		t.Fatalf("asking deleted something: %d dead letters, want 4", q.Ready)
	}
	run(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-purge")), chromedp.WaitVisible(chromedp.ID("dead-total")))
	eventually(t, settleTimeout, "two dead letters purged", func() bool { return c.queue(t, deadQueue).Ready == 2 })
	run(t, ctx, "reload the list", chromedp.Navigate(c.base+"/dead?queue=commands"), chromedp.WaitVisible(chromedp.ID("dead-total")))
	if got := text(t, ctx, "table.jobs tbody"); !containsInOrder(got, "rej-3", "rej-4") || strings.Contains(got, "rej-2") || strings.Contains(got, "exh-1") {
		t.Errorf("after the purge the list shows %q, want rej-3 and rej-4", got)
	}
}

func (c *consoleRun) pauseResume(t *testing.T, ctx context.Context) {
	run(t, ctx, "pause commands",
		chromedp.Navigate(c.base+"/"), chromedp.WaitVisible(chromedp.ID("pause-commands")),
		chromedp.SendKeys(chromedp.ID("reason-commands"), "console test"),
		chromedp.Click(chromedp.ID("pause-commands")), chromedp.WaitVisible(chromedp.ID("resume-commands")))
	if got := text(t, ctx, "#route-commands"); !strings.Contains(got, "paused by operator") || !strings.Contains(got, "by "+consoleOperator+" (console): console test") {
		t.Errorf("the paused route shows %q", got)
	}
	shot(t, ctx, "paused")
	before := len(c.misbehaveLines(t))
	c.publishAs(t, "while-paused", `{"do":"ok"}`)
	// Give a running daemon ample time to take it; a paused one must not.
	eventually(t, settleTimeout, "the job to wait in the queue", func() bool { return c.queue(t, jobQueue).Ready == 1 })
	time.Sleep(2 * time.Second) // a paused daemon would have had every chance to take it by now
	if q := c.queue(t, jobQueue); q.Ready != 1 || len(c.misbehaveLines(t)) != before {
		t.Errorf("while paused: %+v in the queue and %d runs, want the job waiting and no run", q, len(c.misbehaveLines(t))-before)
	}
	// The overview says how long it has waited (RabbitMQ's
	// head_message_timestamp of the classic job queue), by itself.
	eventually(t, settleTimeout, "the overview to show the waiting job's age", func() bool {
		age, err := time.ParseDuration(text(t, ctx, `[data-live="route.commands.oldest"]`))
		return err == nil && age >= 2*time.Second
	})
	run(t, ctx, "resume commands", chromedp.Click(chromedp.ID("resume-commands")), chromedp.WaitVisible(chromedp.ID("pause-commands")))
	eventually(t, settleTimeout, "the job run after the resume", func() bool { return c.misbehaveRuns(t)["while-paused"] == 1 })
}

func (c *consoleRun) narrow(t *testing.T, ctx context.Context) {
	for _, page := range []struct{ name, path, ready string }{
		{"overview-narrow", "/", "#health"},
		{"dead-narrow", "/dead?queue=commands", "#dead-total"},
		{"route-narrow", "/route?queue=commands", "#chart-throughput"},
		{"failures-narrow", "/failures", "#failures"},
		{"names-narrow", "/jobs", "#names"},
		{"delayed-narrow", "/delayed", "#delayed-commands"},
	} {
		run(t, ctx, "open "+page.path+" 375 px wide",
			chromedp.EmulateViewport(narrowWidth, 800, chromedp.EmulateScale(2), chromedp.EmulateMobile),
			chromedp.Navigate(c.base+page.path), chromedp.WaitVisible(chromedp.CSS(page.ready)))
		checkNarrow(t, ctx, page.path)
		shot(t, ctx, page.name)
	}
	run(t, ctx, "desktop again", chromedp.ResetViewport())
}

// routeOverTime runs jobs on the commands route, waits for the route's page
// to chart them (redrawn without a reload), then restarts the console and
// finds the same figures, read back from its history file.
func (c *consoleRun) routeOverTime(t *testing.T, ctx context.Context) {
	run(t, ctx, "open the commands route's page", chromedp.Navigate(c.base+"/route?queue=commands"), chromedp.WaitVisible(chromedp.ID("chart-throughput")))
	c.publishAs(t, "chart-1", `{"do":"ok"}`, "chart-2", `{"do":"ok"}`, "chart-3", `{"do":"ok"}`)
	// A point of the done line above the axis (y < 140) is a step with jobs
	// done; the run time's p50 line exists once a job ran in a step.
	const doneDrawn = `Array.from(document.querySelectorAll("#chart-throughput polyline.done")).some(function (l) {
		return l.getAttribute("points").split(" ").some(function (xy) { return parseFloat(xy.split(",")[1]) < 140; });
	})`
	eventually(t, settleTimeout, "the throughput chart to draw the jobs done, without a reload", func() bool {
		return value(t, ctx, "read the chart", chromedp.Evaluate[bool](doneDrawn))
	})
	if n := value(t, ctx, "count run-time lines", chromedp.Evaluate[int](`document.querySelectorAll("#chart-run polyline.p50").length`)); n == 0 {
		t.Error("the run-time chart draws no p50 line after jobs ran")
	}
	labelled(t, ctx, "route")
	shot(t, ctx, "route")

	// The history outlives the console: after a restart, before any new
	// job, the chart still has the steps with jobs done.
	before := readBody(t, c.do(t, c.httpClientSignedIn(t), http.MethodGet, "/route/part?queue=commands", nil))
	timeout := 10 * time.Second
	if err := c.console.Stop(context.Background(), &timeout); err != nil {
		t.Fatal(err)
	}
	if err := c.console.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.base = c.endpoint(t)
	after := readBody(t, c.do(t, c.httpClientSignedIn(t), http.MethodGet, "/route/part?queue=commands", nil))
	if !doneAboveAxis(before) || !doneAboveAxis(after) {
		t.Errorf("after a restart the done line lost its steps with jobs:\nbefore: %s\nafter: %s", before, after)
	}
	// Sessions live in the console's memory: the browser signs in again.
	run(t, ctx, "sign in again after the restart",
		chromedp.Navigate(c.base+"/signin"), chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), consoleOperator),
		chromedp.SendKeys(chromedp.ID("password"), c.passwords[consoleOperator]),
		chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("health")))
}

// doneAboveAxis reports whether the charts' done line has a point above
// the axis (y < 140): a step in which jobs were done.
func doneAboveAxis(charts string) bool {
	for _, m := range regexp.MustCompile(`class="line done" points="([^"]+)"`).FindAllStringSubmatch(charts, -1) {
		for _, xy := range strings.Fields(m[1]) {
			if _, y, ok := strings.Cut(xy, ","); ok {
				if v, err := strconv.ParseFloat(y, 64); err == nil && v < 140 {
					return true
				}
			}
		}
	}
	return false
}

// failuresAndNames has a job named SendInvoice throw, then finds its
// failed attempt on the recent failures page (arriving without a reload)
// with PHP's fatal error from the script's stderr, and the name's figures
// on the job names page.
func (c *consoleRun) failuresAndNames(t *testing.T, ctx context.Context) {
	run(t, ctx, "open the recent failures", chromedp.Navigate(c.base+"/failures"), chromedp.WaitVisible(chromedp.ID("failures")))
	c.publishMessages(t, jobQueue, amqp.Publishing{MessageId: "throws-1", Type: "SendInvoice", ContentType: "application/json", Body: []byte(`{"do":"exception"}`)})
	const rowOf = `(function (table, id) {
		var tr = Array.from(document.querySelectorAll(table + " tbody tr")).find(function (tr) { return tr.textContent.indexOf(id) >= 0; });
		return tr ? tr.textContent.replace(/\s+/g, " ") : "";
	})`
	var row string
	eventually(t, settleTimeout, "the failed attempt on the page, without a reload", func() bool {
		row = value(t, ctx, "read the failures", chromedp.Evaluate[string](rowOf+`("#failures", "throws-1")`))
		return row != ""
	})
	for _, want := range []string{"SendInvoice", "500", "Uncaught RuntimeException: this job always throws"} {
		if !strings.Contains(row, want) {
			t.Errorf("the failure's row lacks %q: %s", want, row)
		}
	}
	labelled(t, ctx, "failures")
	shot(t, ctx, "failures")

	run(t, ctx, "open the job names", chromedp.Navigate(c.base+"/jobs"), chromedp.WaitVisible(chromedp.ID("names")))
	row = value(t, ctx, "read the names", chromedp.Evaluate[string](rowOf+`("#names", "SendInvoice")`))
	// Its attempts all failed: 0 done, a failed share of 100 %.
	if !strings.Contains(row, "commands SendInvoice 0 ") || !strings.Contains(row, "100.0 %") {
		t.Errorf("SendInvoice's row: %q, want 0 done and 100.0 %% failed", row)
	}
	if row := value(t, ctx, "read the unnamed jobs", chromedp.Evaluate[string](rowOf+`("#names", "no name")`)); !strings.Contains(row, "commands no name") {
		t.Errorf("the jobs without a name: %q", row)
	}
	labelled(t, ctx, "names")
	shot(t, ctx, "names")
}

// delayed publishes a job due in an hour: the daemon puts it in the
// longest delay queue not above that, 2048 s, where the page finds it.
func (c *consoleRun) delayed(t *testing.T, ctx context.Context) {
	run(t, ctx, "open the delayed jobs", chromedp.Navigate(c.base+"/delayed"), chromedp.WaitVisible(chromedp.ID("delayed-commands")))
	job := stack.Job("later-1", []byte(`{"do":"ok"}`))
	job.Headers = amqp.Table{"x-fpmq-due": time.Now().Add(time.Hour).UnixMilli()}
	c.publishMessages(t, jobQueue, job)
	eventually(t, settleTimeout, "the delayed job on the page, without a reload", func() bool {
		return strings.Contains(text(t, ctx, "#delayed-commands .next"), "within 34m8s")
	})
	if got := text(t, ctx, "#delayed-commands .total"); got != "1" {
		t.Errorf("commands' delayed total shows %q, want 1", got)
	}
	labelled(t, ctx, "delayed")
	shot(t, ctx, "delayed")
}

// httpClientSignedIn is a client with the viewer's session.
func (c *consoleRun) httpClientSignedIn(t *testing.T) *http.Client {
	hc, _ := c.signIn(t, consoleViewer)
	return hc
}

// bigDead is how many dead letters the speed check piles up.
const bigDead = 100_000

// speed fills the dead-letter queue with bigDead more dead letters and
// times the console's answers from the host: the first page of dead
// letters (under 1 s), a filtered page that reads CONSOLE_DEAD_SCAN of
// them, and the overview, asking the daemons and cached.
func (c *consoleRun) speed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	body := []byte(`{"do":"broken","status":"422"}`)
	err := stack.PublishConfirmed(ctx, c.adminChannel(t), deadQueue, bigDead, func(i int) amqp.Publishing {
		msg := stack.Job(fmt.Sprintf("bulk-%d", i), body)
		msg.Timestamp = time.Now()
		msg.Headers = amqp.Table{"x-fpmq-reason": "rejected", "x-fpmq-attempts": int32(1), "x-fpmq-queue": jobQueue, "x-fpmq-last-status": int32(422)}
		return msg
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d dead letters published in %s", bigDead, time.Since(start).Round(time.Millisecond))
	operator, _ := c.signIn(t, consoleOperator)
	timed := func(path string) (time.Duration, string) {
		start := time.Now()
		resp := c.do(t, operator, http.MethodGet, path, nil)
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return took, readBody(t, resp)
	}
	for i := range 3 {
		took, page := timed("/dead?queue=commands")
		if !strings.Contains(page, fmt.Sprintf("%d dead letters in commands.dead", bigDead+2)) || !strings.Contains(page, "bulk-47") || strings.Contains(page, "bulk-48") {
			t.Fatalf("the first page does not show the first 50 of %d dead letters", bigDead+2)
		}
		t.Logf("first page of %d dead letters, run %d: %s", bigDead+2, i+1, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("the first page of %d dead letters took %s, want under 1 s", bigDead+2, took)
		}
	}
	took, page := timed("/dead?queue=commands&reason=attempts-exhausted")
	if !strings.Contains(page, "No dead letter matches") || !strings.Contains(page, "read the first 5000") {
		t.Errorf("a filter no dead letter passes should read CONSOLE_DEAD_SCAN (5000) and show none")
	}
	t.Logf("a filtered page reading 5,000 of them: %s", took.Round(time.Millisecond))
	if q := c.queue(t, deadQueue); q.Ready != bigDead+2 || q.Unacked != 0 {
		t.Errorf("after the pages %s holds %d ready, %d unacked; want %d, 0", deadQueue, q.Ready, q.Unacked, bigDead+2)
	}
	// The page says how long asking the daemons took when it last did,
	// uncached; the request's own time is mostly the cache's.
	took, page = timed("/")
	asked := regexp.MustCompile(`asking the daemons took (\d+ ms)`).FindStringSubmatch(page)
	if asked == nil {
		t.Fatal("the overview does not say how long asking the daemons took")
	}
	t.Logf("overview of 2 routes: %s; asking the daemons took %s", took.Round(time.Millisecond), asked[1])
	if took > 200*time.Millisecond {
		t.Errorf("the overview took %s, want under 200 ms", took)
	}
}

// refusals checks, with plain HTTP as a script would, that requests
// without a session, the read-only user's actions and posts without the
// session's CSRF token are refused, and that nothing changed.
func (c *consoleRun) refusals(t *testing.T) {
	anon := c.httpClient()
	// To the sign-in page, which leads back to the page asked for.
	if resp := c.do(t, anon, http.MethodGet, "/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next=%2F" {
		t.Errorf("anonymous GET /: %s to %q, want 303 to /signin?next=%%2F", resp.Status, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/api/live", "/dead?queue=commands"} {
		if resp := c.do(t, anon, http.MethodGet, path, nil); resp.StatusCode == http.StatusOK {
			t.Errorf("anonymous GET %s answered 200", path)
		}
	}
	pause := url.Values{"queue": {jobQueue}, "reason": {"refused"}}
	purge := url.Values{"queue": {jobQueue}, "ids": {"rej-1", "rej-2", "rej-3", "exh-1"}}
	for path, form := range map[string]url.Values{"/routes/pause": pause, "/dead/purge/confirm": purge} {
		if resp := c.do(t, anon, http.MethodPost, path, form); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s: %s, want 401", path, resp.Status)
		}
	}
	viewer, viewerCSRF := c.signIn(t, consoleViewer)
	for path, form := range map[string]url.Values{"/routes/pause": pause, "/dead/purge/confirm": purge, "/dead/replay": purge} {
		form := withCSRF(form, viewerCSRF)
		if resp := c.do(t, viewer, http.MethodPost, path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the viewer's POST %s: %s, want 403", path, resp.Status)
		}
	}
	operator, _ := c.signIn(t, consoleOperator)
	for path, form := range map[string]url.Values{"/routes/pause": pause, "/dead/purge/confirm": purge} {
		if resp := c.do(t, operator, http.MethodPost, path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the operator's POST %s without the CSRF token: %s, want 403", path, resp.Status)
		}
	}
	// Nothing changed: the route consumes, every dead letter is there.
	if q := c.queue(t, deadQueue); q.Ready != 4 {
		t.Errorf("after the refused requests %s holds %d, want 4", deadQueue, q.Ready)
	}
	resp := c.do(t, viewer, http.MethodGet, "/api/live", nil)
	if live := readBody(t, resp); !strings.Contains(live, `"route.commands.state":"consuming"`) {
		t.Errorf("after the refused requests the route is not consuming: %s", live)
	}
}

func (c *consoleRun) httpClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs user in over HTTP and returns the client and its session's
// CSRF token, read from the overview.
func (c *consoleRun) signIn(t *testing.T, user string) (*http.Client, string) {
	t.Helper()
	hc := c.httpClient()
	if resp := c.do(t, hc, http.MethodPost, "/signin", url.Values{"user": {user}, "password": {c.passwords[user]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %s", user, resp.Status)
	}
	page := readBody(t, c.do(t, hc, http.MethodGet, "/", nil))
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on %s's overview", user)
	}
	return hc, m[1]
}

// do sends one request; its body is read and closed (see readBody).
func (c *consoleRun) do(t *testing.T, hc *http.Client, method, path string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withCSRF(form url.Values, token string) url.Values {
	out := url.Values{"csrf": {token}}
	for k, v := range form {
		out[k] = v
	}
	return out
}

// containsInOrder reports whether s holds each of parts, in that order.
func containsInOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// narrowWidth is a phone's screen width in CSS pixels.
const narrowWidth = 375

// checkNarrow checks that the page in ctx, emulated narrowWidth wide, does
// not scroll sideways. A mobile browser zooms out to show a page wider
// than its screen, and its window.innerWidth grows with it: the page's
// width is held against the screen's.
func checkNarrow(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	width := value(t, ctx, "measure", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if width > narrowWidth {
		t.Errorf("%s at %d px: the page is %d px wide: it scrolls sideways", path, narrowWidth, width)
	}
}
