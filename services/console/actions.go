package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// replay starts replaying the selected jobs of a route in the background,
// at the rate asked for (jobs per second, 0 for no limit): the chosen ids
// ("ids"), or every job that the filter matches ("all").
func (s *server) replay(w http.ResponseWriter, r *http.Request, sess session) {
	sel, err := s.actionSelection(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Replay", err)
		return
	}
	perSecond, err := strconv.ParseFloat(cmpOr(strings.TrimSpace(r.PostForm.Get("rate")), strconv.Itoa(defaultRate)), 64)
	if err != nil || perSecond < 0 || perSecond > maxRate {
		s.fail(w, r, http.StatusBadRequest, "Replay", fmt.Errorf("rate: jobs per second, 0 (no limit) to %d", maxRate))
		return
	}
	t, err := s.tasks.start(task{Kind: "replay", Queue: sel.Queue, User: sess.user, What: sel.Describe()},
		func(ctx context.Context, progress deadletter.Progress) (deadletter.Result, error) {
			return s.dead.Replay(ctx, sel.Queue, sel.Filter, deadletter.Rate(perSecond), progress)
		})
	if err != nil {
		s.fail(w, r, http.StatusConflict, "Replay", err)
		return
	}
	s.log.Info().Str("user", sess.user).Str("action", "replay").Str("queue", sel.Queue).Str("selection", sel.Describe()).
		Float64("rate", perSecond).Str("task", t.ID).Msg("dead letters replay started")
	http.Redirect(w, r, "/dead?"+sel.Query()+"&task="+t.ID, http.StatusSeeOther)
}

// actionSelection reads the selection of a replay or purge: chosen ids,
// or "all" of what the filter matches. Neither is an error, so that a
// button pressed with nothing ticked does nothing.
func (s *server) actionSelection(r *http.Request) (selection, error) {
	sel, err := parseSelection(r.PostForm)
	if err != nil {
		return sel, err
	}
	if len(sel.IDs) == 0 && r.PostForm.Get("all") != "1" {
		return sel, errors.New("nothing chosen: tick the jobs, or use the button for every job that matches")
	}
	return sel, nil
}

// confirmData is the purge confirmation page's.
type confirmData struct {
	Sel     selection
	Jobs    []shownJob
	Matched int
	TooMany bool
}

// purgeConfirm reads the jobs a purge would delete, and asks: the
// confirmation names each by id, and purging deletes exactly those.
func (s *server) purgeConfirm(w http.ResponseWriter, r *http.Request, _ session) {
	sel, err := s.actionSelection(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Purge", err)
		return
	}
	jobs, matched, err := s.dead.Matching(r.Context(), sel.Queue, sel.Filter, maxIDs)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "Purge", err)
		return
	}
	d := confirmData{Sel: sel, Matched: matched, TooMany: matched > maxIDs}
	for _, j := range jobs {
		d.Jobs = append(d.Jobs, showJob(j, timeNow()))
	}
	s.render(w, r, http.StatusOK, "confirm", page{Title: "Purge: confirm", Nav: "dead", Queue: sel.Queue, Data: d})
}

// purge deletes the jobs the confirmation named, by id, in the
// background.
func (s *server) purge(w http.ResponseWriter, r *http.Request, sess session) {
	sel, err := parseSelection(url.Values{"queue": {r.PostForm.Get("queue")}, "ids": r.PostForm["ids"]})
	if err == nil && len(sel.IDs) == 0 {
		err = errors.New("nothing to purge: the confirmation names no job")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Purge", err)
		return
	}
	t, err := s.tasks.start(task{Kind: "purge", Queue: sel.Queue, User: sess.user, What: sel.Describe()},
		func(ctx context.Context, progress deadletter.Progress) (deadletter.Result, error) {
			return s.dead.Purge(ctx, sel.Queue, sel.Filter, progress)
		})
	if err != nil {
		s.fail(w, r, http.StatusConflict, "Purge", err)
		return
	}
	s.log.Info().Str("user", sess.user).Str("action", "purge").Str("queue", sel.Queue).Strs("ids", sel.IDs).
		Str("task", t.ID).Msg("dead letters purge started")
	http.Redirect(w, r, "/dead?"+sel.Query()+"&task="+t.ID, http.StatusSeeOther)
}

// pause pauses every daemon of a route, naming who in the reason.
func (s *server) pause(w http.ResponseWriter, r *http.Request, sess session) {
	queue := r.PostForm.Get("queue")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if err := checkText("reason", reason); err != nil {
		s.fail(w, r, http.StatusBadRequest, "Pause", err)
		return
	}
	full := "by " + sess.user + " (console)"
	if reason != "" {
		full += ": " + reason
	}
	s.routeAction(w, r, sess, "pause", queue, func(ctx context.Context) ([]string, error) {
		return s.daemons.Pause(ctx, queue, full)
	})
}

// resume ends the operator's pause of every daemon of a route.
func (s *server) resume(w http.ResponseWriter, r *http.Request, sess session) {
	queue := r.PostForm.Get("queue")
	s.routeAction(w, r, sess, "resume", queue, func(ctx context.Context) ([]string, error) {
		return s.daemons.Resume(ctx, queue)
	})
}

// routeAction runs a pause or resume, logs it with who asked, and goes
// back to the overview.
func (s *server) routeAction(w http.ResponseWriter, r *http.Request, sess session, action, queue string, do func(context.Context) ([]string, error)) {
	if !routeName.MatchString(queue) {
		s.fail(w, r, http.StatusBadRequest, action, fmt.Errorf("route %q: not a queue name", queue))
		return
	}
	daemons, err := do(r.Context())
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Error().Err(err)
	}
	ev.Str("user", sess.user).Str("action", action).Str("queue", queue).Strs("daemons", daemons).Msg("route " + action)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, action, fmt.Errorf("%s %s: %w", action, queue, err))
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
