package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAccountsCheck(t *testing.T) {
	users := accountsOf(config{OperatorUser: "alice", OperatorPassword: operatorPassword, ViewerUser: "victor", ViewerPassword: viewerPassword})
	for _, tc := range []struct {
		user, password string
		want           role
		ok             bool
	}{
		{"alice", operatorPassword, roleOperator, true},
		{"victor", viewerPassword, roleViewer, true},
		{"alice", viewerPassword, "", false}, // another user's password
		{"victor", operatorPassword, "", false},
		{"alice", operatorPassword + "x", "", false},
		{"Alice", operatorPassword, "", false},
		{"", "", "", false},
	} {
		got, ok := users.check(tc.user, tc.password)
		if got != tc.want || ok != tc.ok {
			t.Errorf("check(%q, %q) = %q, %v; want %q, %v", tc.user, tc.password, got, ok, tc.want, tc.ok)
		}
	}
	// A user without a password cannot sign in, with any password.
	only := accountsOf(config{OperatorUser: "alice", OperatorPassword: operatorPassword, ViewerUser: "victor"})
	if _, ok := only.check("victor", ""); ok {
		t.Error("the viewer without a password signed in with an empty one")
	}
}

func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSessions(time.Hour)
	s.now = func() time.Time { return now }
	id, sess := s.start("alice", roleOperator)
	if got, ok := s.get(id); !ok || got.user != "alice" || got.csrf != sess.csrf {
		t.Fatalf("get = %+v, %v; want alice's session", got, ok)
	}
	if _, ok := s.get(id + "x"); ok {
		t.Error("a changed id found a session")
	}
	now = now.Add(time.Hour)
	if _, ok := s.get(id); ok {
		t.Error("a session outlived its TTL")
	}
	id, _ = s.start("alice", roleOperator)
	s.end(id)
	if _, ok := s.get(id); ok {
		t.Error("a session outlived its end")
	}
}

func TestCSRFToken(t *testing.T) {
	_, sess := newSessions(time.Hour).start("alice", roleOperator)
	_, other := newSessions(time.Hour).start("alice", roleOperator)
	if !sess.validCSRF(sess.csrf) {
		t.Error("the session's own token refused")
	}
	for _, bad := range []string{"", other.csrf, sess.csrf[:10]} {
		if sess.validCSRF(bad) {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func TestSignIn(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client()
	status, body := tc.post(c, "/signin", url.Values{"user": {"alice"}, "password": {"wrong-password"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
		t.Errorf("wrong password: %d, want 401 with a message", status)
	}
	resp, err := c.PostForm(tc.srv.URL+"/signin", url.Values{"user": {"alice"}, "password": {operatorPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %s, want 303", resp.Status)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Secure {
		t.Errorf("cookie %+v, want one HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookies)
	}
	if status, body := tc.get(c, "/"); status != http.StatusOK || !strings.Contains(body, "alice (operator)") {
		t.Errorf("overview after sign-in: %d, want 200 naming alice the operator", status)
	}
}

// After signing in, the console goes back to the page that asked for it,
// and only ever to a page of its own.
func TestSignInLeadsBack(t *testing.T) {
	tc := newTestConsole(t)
	status, body := tc.get(tc.client(), "/signin?next="+url.QueryEscape("/dead?queue=commands"))
	if status != http.StatusOK || !strings.Contains(body, `name="next" value="/dead?queue=commands"`) {
		t.Errorf("sign-in page: %d, want 200 carrying next:\n%s", status, body)
	}
	for next, want := range map[string]string{
		"/dead?queue=commands":  "/dead?queue=commands",
		"":                      "/",
		"//evil.example/":       "/",
		"/\\evil.example/":      "/",
		"https://evil.example":  "/",
		"dead":                  "/",
		"/x\r\nSet-Cookie: a=b": "/",
	} {
		resp, err := tc.client().PostForm(tc.srv.URL+"/signin", url.Values{"user": {"alice"}, "password": {operatorPassword}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("sign in with next %q: %s to %q, want 303 to %q", next, resp.Status, resp.Header.Get("Location"), want)
		}
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	tc := newTestConsole(t)
	c, csrf := tc.signIn("alice", operatorPassword)
	if status, _ := tc.post(c, "/signout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", status)
	}
	if status, _ := tc.get(c, "/api/live"); status != http.StatusUnauthorized {
		t.Errorf("after sign-out /api/live answers %d, want 401", status)
	}
}

func TestAnonymousRequestsAreRefused(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client()
	for _, path := range []string{"/", "/dead", "/dead?queue=commands", "/dead/job?queue=commands&id=m1"} {
		resp, err := c.Get(tc.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// To the sign-in page, which will lead back here.
		want := "/signin?" + url.Values{"next": {path}}.Encode()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %s to %q, want 303 to %s", path, resp.Status, resp.Header.Get("Location"), want)
		}
	}
	if status, _ := tc.get(c, "/api/live"); status != http.StatusUnauthorized {
		t.Errorf("GET /api/live: %d, want 401", status)
	}
	// The stylesheet and script are served to all, but no listing of them.
	if status, _ := tc.get(c, "/static/console.js"); status != http.StatusOK {
		t.Errorf("GET /static/console.js: %d, want 200", status)
	}
	if status, _ := tc.get(c, "/static/"); status != http.StatusNotFound {
		t.Errorf("GET /static/: %d, want 404", status)
	}
	for _, path := range []string{"/routes/pause", "/routes/resume", "/dead/replay", "/dead/purge", "/dead/purge/confirm", "/signout"} {
		if status, _ := tc.post(c, path, url.Values{"queue": {"commands"}, "ids": {"m1"}, "all": {"1"}}); status != http.StatusUnauthorized {
			t.Errorf("POST %s: %d, want 401", path, status)
		}
	}
	if got := tc.daemons.done(); len(got) != 0 {
		t.Errorf("anonymous requests did %v", got)
	}
}

func TestViewerCannotAct(t *testing.T) {
	tc := newTestConsole(t)
	tc.dead.jobs = append(tc.dead.jobs, deadJob("m1", "rejected"))
	c, csrf := tc.signIn("victor", viewerPassword)
	if _, body := tc.get(c, "/"); strings.Contains(body, "Pause commands") {
		t.Error("the overview offers the read-only user a pause button")
	}
	for _, path := range []string{"/routes/pause", "/routes/resume", "/dead/replay", "/dead/purge", "/dead/purge/confirm"} {
		if status, _ := tc.post(c, path, url.Values{"csrf": {csrf}, "queue": {"commands"}, "ids": {"m1"}}); status != http.StatusForbidden {
			t.Errorf("POST %s as the viewer: %d, want 403", path, status)
		}
	}
	if got := tc.daemons.done(); len(got) != 0 {
		t.Errorf("the viewer's requests did %v", got)
	}
	if len(tc.dead.jobs) != 1 || len(tc.dead.replayed)+len(tc.dead.purged) != 0 {
		t.Errorf("the viewer's requests changed the dead letters: %d left, replayed %v, purged %v", len(tc.dead.jobs), tc.dead.replayed, tc.dead.purged)
	}
}

func TestPostsNeedTheSessionsToken(t *testing.T) {
	tc := newTestConsole(t)
	c, csrf := tc.signIn("alice", operatorPassword)
	_, otherCSRF := tc.signIn("alice", operatorPassword) // another session's
	for _, token := range []string{"", otherCSRF, csrf + "x"} {
		if status, _ := tc.post(c, "/routes/pause", url.Values{"csrf": {token}, "queue": {"commands"}}); status != http.StatusForbidden {
			t.Errorf("pause with token %q: %d, want 403", token, status)
		}
	}
	// A cross-site form post is refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, tc.srv.URL+"/routes/pause", strings.NewReader(url.Values{"csrf": {csrf}, "queue": {"commands"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site pause: %s, want 403", resp.Status)
	}
	if got := tc.daemons.done(); len(got) != 0 {
		t.Errorf("refused posts did %v", got)
	}
	if status, _ := tc.post(c, "/routes/pause", url.Values{"csrf": {csrf}, "queue": {"commands"}, "reason": {"deploy"}}); status != http.StatusSeeOther {
		t.Errorf("pause with the token: %d, want 303", status)
	}
	if got, want := tc.daemons.done(), []string{"pause commands by alice (console): deploy"}; !slices.Equal(got, want) {
		t.Errorf("did %q, want %q", got, want)
	}
}

func TestSecurityHeaders(t *testing.T) {
	tc := newTestConsole(t)
	for _, path := range []string{"/signin", "/", "/static/console.css"} {
		resp, err := tc.client().Get(tc.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for name, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := resp.Header.Get(name); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s is %q, want it to start with %q", path, name, got, want)
			}
		}
	}
}
