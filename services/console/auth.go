package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// role is what a signed-in user may do.
type role string

const (
	roleOperator role = "operator" // may see everything and act
	roleViewer   role = "viewer"   // may see everything, act on nothing
)

// mayAct reports whether r may change anything.
func (r role) mayAct() bool { return r == roleOperator }

// account is one user who may sign in. The password is kept only as its
// SHA-256, so that comparing takes the same time whatever its length.
type account struct {
	name     string
	password [sha256.Size]byte
	role     role
}

// accounts are the users of the console: at most an operator and a
// read-only one, from the configuration.
type accounts []account

// accountsOf returns the users configured in c; a user without a
// password cannot sign in and is left out.
func accountsOf(c config) accounts {
	var a accounts
	if c.OperatorPassword != "" {
		a = append(a, account{c.OperatorUser, sha256.Sum256([]byte(c.OperatorPassword)), roleOperator})
	}
	if c.ViewerPassword != "" {
		a = append(a, account{c.ViewerUser, sha256.Sum256([]byte(c.ViewerPassword)), roleViewer})
	}
	return a
}

// check returns the role of the user name with password, or false. It
// compares every account in constant time, so that the time taken says
// neither which user names exist nor how much of a password was right.
func (a accounts) check(name, password string) (role, bool) {
	gotName := sha256.Sum256([]byte(name))
	gotPassword := sha256.Sum256([]byte(password))
	var found role
	ok := 0
	for _, acc := range a {
		wantName := sha256.Sum256([]byte(acc.name))
		match := subtle.ConstantTimeCompare(gotName[:], wantName[:]) & subtle.ConstantTimeCompare(gotPassword[:], acc.password[:])
		if match == 1 {
			found = acc.role
		}
		ok |= match
	}
	return found, ok == 1
}

// session is one sign-in.
type session struct {
	user    string
	role    role
	csrf    string // the token every state-changing request must carry
	expires time.Time
}

// sessions holds the sign-ins in memory: a restart of the console signs
// everyone out. The cookie carries a random id of 256 bits; the map is
// keyed by its SHA-256, so that the ids themselves are nowhere in memory
// for long and a lookup's time says nothing about them.
type sessions struct {
	mu   sync.Mutex
	byID map[[sha256.Size]byte]session
	ttl  time.Duration
	now  func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{byID: map[[sha256.Size]byte]session{}, ttl: ttl, now: time.Now}
}

// start creates a session for user and returns its id, for the cookie.
func (s *sessions) start(user string, r role) (id string, sess session) {
	id, csrf := randomToken(), randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	// Expired sessions go when a new one starts: there are few of them.
	for k, old := range s.byID {
		if !now.Before(old.expires) {
			delete(s.byID, k)
		}
	}
	sess = session{user: user, role: r, csrf: csrf, expires: now.Add(s.ttl)}
	s.byID[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// get returns the live session of id, or false.
func (s *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[key]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.byID, key)
		return session{}, false
	}
	return sess, true
}

// end deletes the session of id, if any.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, sha256.Sum256([]byte(id)))
}

// validCSRF reports whether the token a request carries is its session's,
// in constant time.
func (sess session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // crypto/rand.Read never fails: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}
