package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSampleJobIsAJob(t *testing.T) {
	before := time.Now().UnixMicro()
	var m struct {
		Number int     `json:"number"`
		Tag    string  `json:"tag"`
		Sleep  float64 `json:"sleep"`
		SentUS int64   `json:"sent_us"`
	}
	if err := json.Unmarshal(sampleJob(7, "article", 1500*time.Millisecond), &m); err != nil {
		t.Fatal(err)
	}
	if m.Number != 7 || m.Tag != "article" || m.Sleep != 1.5 || m.SentUS < before || m.SentUS > time.Now().UnixMicro() {
		t.Errorf("sampleJob = %+v", m)
	}
	if s := string(sampleJob(1, "direct", 0)); strings.Contains(s, "sleep") {
		t.Errorf("sampleJob without a nap has a sleep field: %s", s)
	}
}

func TestFormsMatchTheirJobs(t *testing.T) {
	var m struct {
		Number int    `json:"number"`
		Tag    string `json:"tag"`
	}
	if err := json.Unmarshal(sampleJob(7, "direct", 0), &m); err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(sampleForm(7, "direct")))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("number") != strconv.Itoa(m.Number) || form.Get("tag") != m.Tag || form.Get("sent_us") == "" || len(form) != 3 {
		t.Errorf("sampleForm = %v, want the fields of sampleJob %+v", form, m)
	}
	if got := string(sampleForm(7, "direct")); !strings.HasPrefix(got, "number=7&tag=direct&sent_us=") {
		t.Errorf("sampleForm = %s: not in the message's order", got)
	}
	if got, want := string(jobJSON(42)), `{"number":42}`; got != want {
		t.Errorf("jobJSON = %s, want %s", got, want)
	}
	if got, want := string(jobForm(42)), "number=42"; got != want {
		t.Errorf("jobForm = %s, want %s", got, want)
	}
}
