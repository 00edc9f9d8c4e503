package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/testutil"
)

func TestThrottleWaitsPerKey(t *testing.T) {
	clock := &testutil.Clock{T: time.Unix(1_800_000_000, 0)}
	th := newThrottle(2, 10*time.Second)
	th.now = clock.Now

	th.failed("address a", "user alice")
	if d := th.wait("address a", "user alice"); d != 0 {
		t.Fatalf("after 1 failure of a burst of 2: wait %s, want none", d)
	}
	th.failed("address a", "user alice")
	if d := th.wait("address b", "user alice"); d != 10*time.Second {
		t.Errorf("alice from another address: wait %s, want 10s (the user's bucket is empty)", d)
	}
	if d := th.wait("address a", "user bob"); d != 10*time.Second {
		t.Errorf("bob from the same address: wait %s, want 10s (the address's bucket is empty)", d)
	}
	if d := th.wait("address b", "user bob"); d != 0 {
		t.Errorf("bob from another address: wait %s, want none", d)
	}
	clock.T = clock.T.Add(4 * time.Second)
	if d := th.wait("address a"); d != 6*time.Second {
		t.Errorf("4 s later: wait %s, want 6s", d)
	}
	clock.T = clock.T.Add(6 * time.Second)
	if d := th.wait("address a", "user alice"); d != 0 {
		t.Errorf("an interval later: wait %s, want none", d)
	}
}

func TestThrottleForgetsFullBuckets(t *testing.T) {
	clock := &testutil.Clock{T: time.Unix(1_800_000_000, 0)}
	th := newThrottle(1, time.Second)
	th.now = clock.Now
	for i := range maxThrottleKeys {
		th.failed("address " + strconv.Itoa(i))
	}
	clock.T = clock.T.Add(time.Second)
	th.failed("address new")
	if n := len(th.buckets); n != 1 {
		t.Errorf("%d buckets kept, want 1: the refilled ones forgotten", n)
	}
}

func TestThrottleOff(t *testing.T) {
	th := newThrottle(0, time.Second)
	for range 10 {
		th.failed("address a")
	}
	if d := th.wait("address a"); d != 0 || len(th.buckets) != 0 {
		t.Errorf("a burst of 0: wait %s with %d buckets, want none", d, len(th.buckets))
	}
}

func TestSignInThrottled(t *testing.T) {
	tc := newTestConsole(t)
	clock := &testutil.Clock{T: time.Unix(1_800_000_000, 0)}
	tc.console.throttle = newThrottle(2, time.Minute)
	tc.console.throttle.now = clock.Now
	c := tc.client()
	for i := range 2 {
		if status, _ := tc.post(c, "/signin", url.Values{"user": {"alice"}, "password": {"wrong-password"}}); status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, status)
		}
	}
	for _, who := range []struct{ user, password string }{{"alice", operatorPassword}, {"victor", viewerPassword}} {
		resp, err := c.PostForm(tc.srv.URL+"/signin", url.Values{"user": {who.user}, "password": {who.password}})
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" ||
			!strings.Contains(body, "Too many failed sign-ins: try again in 60 s.") || len(resp.Cookies()) != 0 {
			t.Errorf("%s, right password, after the burst from this address: %s, Retry-After %q, cookies %v; want 429, 60, a message, no session",
				who.user, resp.Status, resp.Header.Get("Retry-After"), resp.Cookies())
		}
	}
	clock.T = clock.T.Add(time.Minute)
	resp, err := c.PostForm(tc.srv.URL+"/signin", url.Values{"user": {"alice"}, "password": {operatorPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a minute later, right password: %s, want 303", resp.Status)
	}
}
