package main

import (
	"math"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestSummarizeAndRatios(t *testing.T) {
	s, ok := summarize([]float64{3, math.NaN(), 1, 2})
	if !ok || s != (summary{median: 2, min: 1, max: 3}) {
		t.Errorf("summarize = %+v, %v; want median 2 of 1..3", s, ok)
	}
	if _, ok := summarize([]float64{math.NaN()}); ok {
		t.Error("summarize of NaNs only is ok")
	}
	r := ratios([]float64{2, 6, 1}, []float64{4, 3})
	if r[0] != 0.5 || r[1] != 2 || !math.IsNaN(r[2]) {
		t.Errorf("ratios = %v, want [0.5 2 NaN]", r)
	}
}

func TestTargetVerdict(t *testing.T) {
	for _, c := range []struct {
		values []float64
		want   string
	}{
		{[]float64{0.4, 0.6, 0.7}, "PASS"},
		{[]float64{0.4, 0.45, 0.7}, "FAIL"},
		{[]float64{math.NaN()}, "n/a"},
	} {
		f := figure{values: c.values, limit: 0.5}
		if got := f.verdict(); got != c.want {
			t.Errorf("verdict of %v = %s, want %s", c.values, got, c.want)
		}
	}
	if (&figure{values: []float64{1}}).verdict() != "" {
		t.Error("a plain figure has a verdict")
	}
}

func TestFreshUUIDChangesOnlyTheIdentity(t *testing.T) {
	const id = "2b0b1b0e-1c1a-4f5e-9a0b-0c1d2e3f4a5b"
	p := amqp.Publishing{MessageId: id, Type: "App\\Jobs\\NoopJob", Body: []byte(`{"uuid":"` + id + `","job":"x"}`)}
	c := freshUUID(p, 0)
	if c.MessageId == id || len(c.MessageId) != len(id) || c.Type != p.Type {
		t.Errorf("copy %+v of %+v: want a new uuid of the same form, the rest the same", c, p)
	}
	if want := strings.ReplaceAll(string(p.Body), id, c.MessageId); string(c.Body) != want {
		t.Errorf("body %s, want %s", c.Body, want)
	}
}

func TestParseVariants(t *testing.T) {
	v, err := parseVariants("no-validate, no-opcache")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range v {
		names = append(names, x.name)
	}
	if got := strings.Join(names, ","); got != "shipped,no-opcache,no-validate" {
		t.Errorf("variants %s, want shipped first, then in the bench's order", got)
	}
	if _, err := parseVariants("jit"); err == nil {
		t.Error("an unknown variant was accepted")
	}
}
