package main

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// cookieName is the session cookie's name.
const cookieName = "fpmq_console"

// overviewSource is where the overview's figures come from: the daemons
// (daemonSource), or a fake in tests.
type overviewSource interface {
	Snapshot(ctx context.Context) snapshot
	Pause(ctx context.Context, queue, reason string) ([]string, error)
	Resume(ctx context.Context, queue string) ([]string, error)
	// Jobs asks every daemon for its journal: recent failures, job names.
	Jobs(ctx context.Context) []jobsAnswer
}

// server is the console's HTTP side.
type server struct {
	users    accounts
	sessions *sessions
	throttle *throttle
	daemons  overviewSource
	history  *history
	heads    *heads
	dead     deadSource
	jaeger   *jaeger // nil: tracing off (CONSOLE_JAEGER_URL)
	tasks    *tasks
	log      zerolog.Logger
	pages    map[string]*template.Template
	secure   bool // served over TLS: cookies are Secure, HSTS is sent
	refresh  time.Duration
	pageSize int
	scan     int
}

// newServer returns the console's server; its tasks end with ctx.
func newServer(ctx context.Context, c config, daemons overviewSource, dead deadSource, log zerolog.Logger) (*server, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &server{
		users:    accountsOf(c),
		sessions: newSessions(c.SessionTTL),
		throttle: newThrottle(c.SignInBurst, c.SignInInterval),
		daemons:  daemons,
		history:  newHistory(c.HistoryStep, c.HistoryKeep, c.HistoryFile, log),
		heads:    &heads{api: c.api, timeout: c.DaemonTimeout, ttl: c.CacheTTL},
		dead:     dead,
		jaeger:   newJaeger(c.JaegerURL, jaegerTimeout),
		tasks:    newTasks(ctx, log),
		log:      log,
		pages:    pages,
		secure:   c.TLSCertFile != "",
		refresh:  c.RefreshInterval,
		pageSize: c.DeadPageSize,
		scan:     c.DeadScan,
	}, nil
}

// handler returns every endpoint, each behind the security headers;
// every one but the sign-in page and the static files needs a session,
// every POST its CSRF token, every action the operator's role.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static") // the directory is embedded: no error
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		files.ServeHTTP(w, r) // one file by name: no directory listing
	})
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)

	mux.Handle("POST /signout", s.signedIn(s.withCSRF(http.HandlerFunc(s.signOut))))
	mux.Handle("GET /{$}", s.signedIn(http.HandlerFunc(s.overviewPage)))
	mux.Handle("GET /api/live", s.signedIn(http.HandlerFunc(s.liveAPI)))
	mux.Handle("GET /route", s.signedIn(http.HandlerFunc(s.routePage)))
	mux.Handle("GET /failures", s.signedIn(http.HandlerFunc(s.failuresPage)))
	mux.Handle("GET /jobs", s.signedIn(http.HandlerFunc(s.namesPage)))
	mux.Handle("GET /delayed", s.signedIn(http.HandlerFunc(s.delayedPage)))
	// The parts of pages that their script redraws.
	mux.Handle("GET /route/part", s.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, status := s.routeData(r)
		s.renderPart(w, status, "route", d)
	})))
	mux.Handle("GET /failures/part", s.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderPart(w, http.StatusOK, "failures", s.failuresData(r))
	})))
	mux.Handle("GET /jobs/part", s.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderPart(w, http.StatusOK, "names", s.namesData(r))
	})))
	mux.Handle("GET /delayed/part", s.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderPart(w, http.StatusOK, "delayed", s.delayedData(r))
	})))
	mux.Handle("GET /dead", s.signedIn(http.HandlerFunc(s.deadPage)))
	mux.Handle("GET /dead/job", s.signedIn(http.HandlerFunc(s.jobPage)))
	mux.Handle("GET /trace", s.signedIn(http.HandlerFunc(s.tracePage)))
	mux.Handle("POST /dead/replay", s.action(s.replay))
	mux.Handle("POST /dead/purge", s.action(s.purgeConfirm))
	mux.Handle("POST /dead/purge/confirm", s.action(s.purge))
	mux.Handle("POST /routes/pause", s.action(s.pause))
	mux.Handle("POST /routes/resume", s.action(s.resume))

	// Cross-origin POSTs are refused before anything else (Sec-Fetch-Site
	// and Origin), the CSRF token being the second line.
	csrf := http.NewCrossOriginProtection()
	return s.headers(csrf.Handler(mux))
}

// action is a state-changing endpoint: signed in, with the session's CSRF
// token, as the operator.
func (s *server) action(h func(http.ResponseWriter, *http.Request, session)) http.Handler {
	return s.signedIn(s.withCSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := sessionOf(r)
		if !sess.role.mayAct() {
			s.log.Warn().Str("user", sess.user).Str("role", string(sess.role)).Str("path", r.URL.Path).
				Str("queue", r.PostFormValue("queue")).Msg("refused: the read-only role may not act")
			http.Error(w, "Forbidden: your role is read-only.", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	})))
}

// headers sets the security headers of every answer.
func (s *server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

// sessionOf returns the session signedIn found for r.
func sessionOf(r *http.Request) session {
	sess, _ := r.Context().Value(sessionKey{}).(session)
	return sess
}

// signedIn lets a request with a live session through; others are sent
// to the sign-in page (a page) or refused with 401 (anything else).
func (s *server) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if c, err := r.Cookie(cookieName); err == nil {
			id = c.Value
		}
		sess, ok := s.sessions.get(id)
		if !ok {
			if r.Method == http.MethodGet && r.URL.Path != "/api/live" && !strings.HasSuffix(r.URL.Path, "/part") {
				// Back to this page once signed in.
				http.Redirect(w, r, "/signin?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return
			}
			s.log.Warn().Str("from", r.RemoteAddr).Str("method", r.Method).Str("path", r.URL.Path).Msg("refused: not signed in")
			http.Error(w, "Unauthorized: sign in first.", http.StatusUnauthorized)
			return
		}
		// Nothing the console shows is to be kept by a browser or a proxy.
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

// maxFormBytes bounds a POST's body: a form of ids, at most maxIDs of them.
const maxFormBytes = 1 << 20

// withCSRF lets a POST through only with its session's CSRF token in the
// form field "csrf".
func (s *server) withCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		sess := sessionOf(r)
		if !sess.validCSRF(r.PostForm.Get("csrf")) {
			s.log.Warn().Str("user", sess.user).Str("path", r.URL.Path).Str("from", r.RemoteAddr).Msg("refused: no or wrong CSRF token")
			http.Error(w, "Forbidden: the form's token is missing or stale; reload the page.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// setCookie sets the session cookie; an empty id with maxAge -1 deletes it.
func (s *server) setCookie(w http.ResponseWriter, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure,
	})
}
