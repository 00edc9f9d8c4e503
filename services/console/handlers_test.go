package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
)

func TestOverviewShowsTheRoutes(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.signIn("alice", operatorPassword)
	status, body := tc.get(c, "/")
	if status != http.StatusOK {
		t.Fatalf("overview: %d", status)
	}
	for _, want := range []string{"All well", `id="route-commands"`, ">30.0<", ">7<", "2 / 6", "Pause commands"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "onclick") {
		t.Error("the page has inline script, which the CSP forbids")
	}
}

func TestLiveAPI(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.signIn("victor", viewerPassword)
	tc.daemons.mu.Lock()
	tc.daemons.snap.Daemons[0].Status.Routes[0].Dead = intp(3)
	tc.daemons.mu.Unlock()
	status, body := tc.get(c, "/api/live")
	if status != http.StatusOK {
		t.Fatalf("/api/live: %d", status)
	}
	var live liveJSON
	if err := json.Unmarshal([]byte(body), &live); err != nil {
		t.Fatal(err)
	}
	if live.Healthy || live.Fields["route.commands.dead"] != "3" || !slices.Contains(live.Problems, "commands: 3 dead letters") {
		t.Errorf("live %+v, want unhealthy with 3 dead letters on commands", live)
	}
}

func TestDeadPageListsAndPages(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m1", "rejected"), deadJob("m2", "attempts-exhausted"), deadJob("m3", "rejected"), deadJob("m4", "rejected"))
	c, _ := tc.signIn("alice", operatorPassword)
	_, body := tc.get(c, "/dead?queue=commands")
	if !strings.Contains(body, ">m1<") || !strings.Contains(body, ">m2<") || strings.Contains(body, ">m3<") || !strings.Contains(body, `id="next"`) {
		t.Errorf("first page (2 a page) should list m1 and m2 and link a next one:\n%s", body)
	}
	if strings.Contains(body, "boom <script>") || !strings.Contains(body, "boom &lt;script&gt;") {
		t.Error("a job's last error is not escaped")
	}
	// Links keep their query as a query: "=" and "&" not escaped away.
	_, body = tc.get(c, "/dead?queue=commands&reason=rejected")
	if !strings.Contains(body, `href="/dead?queue=commands&amp;reason=rejected&amp;skip=2"`) {
		t.Errorf("the next page's link is not the filter's next page:\n%s", body)
	}
	_, body = tc.get(c, "/dead?queue=commands&reason=rejected&skip=1")
	if strings.Contains(body, ">m1<") || !strings.Contains(body, ">m3<") || !strings.Contains(body, ">m4<") {
		t.Errorf("rejected jobs from the 2nd on should be m3 and m4:\n%s", body)
	}
	for _, bad := range []string{"/dead?queue=a%20b", "/dead?queue=commands&older=soon", "/dead?queue=commands&skip=-1", "/dead?queue=commands&reason=" + strings.Repeat("x", 201)} {
		if status, _ := tc.get(c, bad); status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, status)
		}
	}
}

func TestJobPageShowsTheJobWhole(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m7", "rejected"))
	c, _ := tc.signIn("victor", viewerPassword)
	status, body := tc.get(c, "/dead/job?queue=commands&id=m7")
	if status != http.StatusOK {
		t.Fatalf("job page: %d", status)
	}
	for _, want := range []string{`&#34;number&#34;: 7`, "x-fpmq-attempts", "send-mail", "rejected"} {
		if !strings.Contains(body, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if strings.Contains(body, "Replay this job") {
		t.Error("the read-only user is offered a replay")
	}
	if !strings.Contains(body, `href="/dead?queue=commands"`) {
		t.Errorf("the link back to the list is not the route's dead letters:\n%s", body)
	}
	if status, _ := tc.get(c, "/dead/job?queue=commands&id=nope"); status != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", status)
	}
}

// waitTasks waits until no task of the console runs.
func waitTasks(t *testing.T, tc *testConsole) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for slices.ContainsFunc(tc.console.tasks.recent(""), task.Running) {
		if time.Now().After(deadline) {
			t.Fatal("a task still runs after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReplayChosenAndMatching(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m1", "rejected"), deadJob("m2", "attempts-exhausted"), deadJob("m3", "rejected"))
	c, csrf := tc.signIn("alice", operatorPassword)
	if status, _ := tc.post(c, "/dead/replay", url.Values{"csrf": {csrf}, "queue": {"commands"}}); status != http.StatusBadRequest {
		t.Errorf("replay of nothing chosen: %d, want 400", status)
	}
	if status, _ := tc.post(c, "/dead/replay", url.Values{"csrf": {csrf}, "queue": {"commands"}, "ids": {"m2"}, "rate": {"-1"}}); status != http.StatusBadRequest {
		t.Errorf("replay at a negative rate: %d, want 400", status)
	}
	if status, _ := tc.post(c, "/dead/replay", url.Values{"csrf": {csrf}, "queue": {"commands"}, "ids": {"m2"}}); status != http.StatusSeeOther {
		t.Fatalf("replay m2: %d, want 303", status)
	}
	waitTasks(t, tc)
	if status, _ := tc.post(c, "/dead/replay", url.Values{"csrf": {csrf}, "queue": {"commands"}, "all": {"1"}, "reason": {"rejected"}, "rate": {"0"}}); status != http.StatusSeeOther {
		t.Fatalf("replay every rejected job: %d, want 303", status)
	}
	waitTasks(t, tc)
	if want := []string{"m2", "m1", "m3"}; !slices.Equal(tc.dead.replayed, want) {
		t.Errorf("replayed %v, want %v", tc.dead.replayed, want)
	}
	if _, body := tc.get(c, "/dead?queue=commands"); !strings.Contains(body, "replayed 2 of 2 matching") {
		t.Errorf("the page does not show the ended replay:\n%s", body)
	}
}

func TestPurgeAsksAndDeletesExactlyTheNamedJobs(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m1", "rejected"), deadJob("m2", "attempts-exhausted"), deadJob("m3", "rejected"))
	c, csrf := tc.signIn("alice", operatorPassword)
	status, body := tc.post(c, "/dead/purge", url.Values{"csrf": {csrf}, "queue": {"commands"}, "all": {"1"}, "reason": {"rejected"}})
	if status != http.StatusOK || !strings.Contains(body, `value="m1"`) || !strings.Contains(body, `value="m3"`) || strings.Contains(body, `value="m2"`) {
		t.Fatalf("confirmation: %d, want 200 naming m1 and m3 only:\n%s", status, body)
	}
	if len(tc.dead.purged) != 0 {
		t.Fatalf("asking purged %v already", tc.dead.purged)
	}
	// A rejected job dead-lettered after the confirmation was drawn is
	// not in it, and stays.
	tc.dead.mu.Lock()
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m4", "rejected"))
	tc.dead.mu.Unlock()
	if status, _ := tc.post(c, "/dead/purge/confirm", url.Values{"csrf": {csrf}, "queue": {"commands"}, "ids": {"m1", "m3"}}); status != http.StatusSeeOther {
		t.Fatalf("confirm: %d, want 303", status)
	}
	waitTasks(t, tc)
	if want := []string{"m1", "m3"}; !slices.Equal(tc.dead.purged, want) {
		t.Errorf("purged %v, want %v", tc.dead.purged, want)
	}
	if len(tc.dead.jobs) != 2 {
		t.Errorf("%d jobs left, want m2 and m4", len(tc.dead.jobs))
	}
	if status, _ := tc.post(c, "/dead/purge/confirm", url.Values{"csrf": {csrf}, "queue": {"commands"}}); status != http.StatusBadRequest {
		t.Errorf("a confirmation naming nothing: %d, want 400", status)
	}
}

func TestPauseAndResume(t *testing.T) {
	tc := newTestConsole(t)
	c, csrf := tc.signIn("alice", operatorPassword)
	tc.post(c, "/routes/pause", url.Values{"csrf": {csrf}, "queue": {"commands"}})
	tc.post(c, "/routes/resume", url.Values{"csrf": {csrf}, "queue": {"commands"}})
	if status, _ := tc.post(c, "/routes/pause", url.Values{"csrf": {csrf}, "queue": {"commands"}, "reason": {"a\nb"}}); status != http.StatusBadRequest {
		t.Errorf("a reason with a newline: %d, want 400", status)
	}
	if got, want := tc.daemons.done(), []string{"pause commands by alice (console)", "resume commands"}; !slices.Equal(got, want) {
		t.Errorf("did %q, want %q", got, want)
	}
	// A paused route offers resume, and says by whom.
	tc.daemons.mu.Lock()
	tc.daemons.snap.Daemons[0].Status.Routes[0].Pause = admin.Pause{Paused: true, Reason: "by alice (console): deploy", Since: time.Now(), State: "paused"}
	tc.daemons.mu.Unlock()
	_, body := tc.get(c, "/")
	if !strings.Contains(body, "Resume commands") || !strings.Contains(body, "by alice (console): deploy") || !strings.Contains(body, "Something is wrong") {
		t.Errorf("the overview of a paused route:\n%s", body)
	}
}
