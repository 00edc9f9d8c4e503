package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageNames are the templates, each drawn inside templates/layout.html.
var pageNames = []string{"signin", "overview", "route", "failures", "names", "delayed", "dead", "job", "confirm", "done", "trace"}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"count":  count,
		"rate":   rate,
		"ago":    ago,
		"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"ms":     func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) },
		"add":    func(a, b int) int { return a + b },
		"cut":    cut,
		"span":   span,
		"plural": plural,
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// cut shortens s to at most n runes, marking the cut with an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// ago says how long before now t was, to the second.
func ago(t time.Time) string {
	if t.IsZero() {
		return "n/a"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// page is what every page's template gets.
type page struct {
	Title   string
	Nav     string // the menu entry to mark as current
	User    string
	Role    role
	CSRF    string
	Refresh int // seconds between live refreshes; 0: none
	Queue   string
	Tracing bool // the trace page is on: link it
	Data    any
}

// CanAct reports whether the page may offer actions.
func (p page) CanAct() bool { return p.Role.mayAct() }

// render draws a page in the layout, for the session of r.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	sess := sessionOf(r)
	p.User, p.Role, p.CSRF = sess.user, sess.role, sess.csrf
	p.Tracing = s.jaeger != nil
	if p.Refresh == 0 && sess.user != "" && name != "confirm" {
		p.Refresh = int(max(s.refresh/time.Second, 1))
	}
	s.write(w, status, name, "layout.html", p)
}

// renderPart draws the template "part" of a page alone, which the page's
// script fetches (its data-src) to redraw that part without a reload.
func (s *server) renderPart(w http.ResponseWriter, status int, name string, data any) {
	s.write(w, status, name, "part", data)
}

// write runs the template called tmpl of page name and writes it out
// only once it ran whole, so that an error is not half a page.
func (s *server) write(w http.ResponseWriter, status int, name, tmpl string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, tmpl, data); err != nil {
		s.log.Error().Err(err).Str("page", name).Str("template", tmpl).Msg("render page")
		http.Error(w, "Internal error: the page could not be drawn.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // a write error means the client went away
}

// fail shows an error on a page of its own, with status.
func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, title string, err error) {
	s.render(w, r, status, "done", page{Title: title, Data: doneData{Error: err.Error()}})
}

// doneData is the page after an action, or an error.
type doneData struct {
	Message string
	Error   string
	Back    string // where to go on
}

// signInData is the sign-in page's: why the last try failed, and the page
// to go to once signed in.
type signInData struct {
	Error string
	Next  string
}

func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: signInData{Next: localPath(r.URL.Query().Get("next"))}})
}

// localPath returns p if it is a path of this site ("/trace?id=x"), else
// "/": a link to the sign-in page must not send a user elsewhere once
// signed in ("//host", "/\\host" and "https://host" are other sites to a
// browser).
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// signIn checks the form's user and password and starts a session. After
// too many failures from the client's address or for the user name, it
// refuses (429, Retry-After) without checking the password.
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"))
	keys := signInKeys(r, user)
	if wait := s.throttle.wait(keys...); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		s.log.Warn().Str("user", user).Str("from", r.RemoteAddr).Int("retry_after_s", secs).Msg("sign-in refused: too many failed sign-ins")
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "Sign in",
			Data: signInData{Error: fmt.Sprintf("Too many failed sign-ins: try again in %d s.", secs), Next: next}})
		return
	}
	role, ok := s.users.check(user, password)
	if !ok {
		s.throttle.failed(keys...)
		s.log.Warn().Str("user", user).Str("from", r.RemoteAddr).Msg("sign-in refused: wrong user or password")
		s.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Data: signInData{Error: "Wrong user name or password.", Next: next}})
		return
	}
	id, _ := s.sessions.start(user, role)
	s.setCookie(w, id, int(s.sessions.ttl/time.Second))
	s.log.Info().Str("user", user).Str("role", string(role)).Str("from", r.RemoteAddr).Msg("signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signInKeys returns the throttle's keys of a sign-in: the client's
// address (without its port) and the user name tried.
func signInKeys(r *http.Request, user string) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"address " + host, "user " + user}
}

func (s *server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.sessions.end(c.Value)
	}
	s.setCookie(w, "", -1)
	s.log.Info().Str("user", sessionOf(r).user).Msg("signed out")
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (s *server) overviewPage(w http.ResponseWriter, r *http.Request) {
	o := s.overview(r.Context())
	s.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: o})
}

// liveJSON is what the pages poll: the figures by element key, the
// problems and the tasks.
type liveJSON struct {
	Summary  string            `json:"summary"`
	Healthy  bool              `json:"healthy"`
	Fields   map[string]string `json:"fields"`
	Problems []string          `json:"problems"`
	Tasks    []liveTask        `json:"tasks"`
	At       time.Time         `json:"at"`
}

type liveTask struct {
	ID       string `json:"id"`
	Progress string `json:"progress"`
	Running  bool   `json:"running"`
}

// liveAPI answers the pages' polls (static/console.js).
func (s *server) liveAPI(w http.ResponseWriter, r *http.Request) {
	o := s.overview(r.Context())
	out := liveJSON{Summary: o.Summary(), Healthy: o.Healthy(), Fields: o.live(), Problems: o.Problems, Tasks: []liveTask{}, At: o.At}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	for _, t := range s.tasks.recent(r.URL.Query().Get("queue")) {
		out.Tasks = append(out.Tasks, liveTask{ID: t.ID, Progress: t.Progress(), Running: t.Running()})
		out.Fields["task."+t.ID] = t.Progress()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out) // a write error means the client went away
}

// timeNow is time.Now, for the pages' ages.
var timeNow = time.Now
