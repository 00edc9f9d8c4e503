package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The charts' drawing area, in SVG user units; the page scales it to
// its width.
const (
	chartWidth  = 600
	chartHeight = 140
)

// chart is one figure of a route over time, drawn by the route page's
// template as an SVG: one polyline per run of consecutive points of each
// line (a step without a value breaks the line).
type chart struct {
	ID, Title, Unit string
	Top             string // the value at the top of the drawing area, with its unit
	Half            string // the value of the dashed line, half way up
	From, To        string // the times at the left and right edges, UTC
	Lines           []chartLine
	// Summary says in words what the chart shows, for a screen reader
	// and as its caption's last figures.
	Summary string
}

type chartLine struct {
	Name, Class string
	Segments    []string // SVG polyline points: "x,y x,y ..."
	Last        string   // the last value, with its unit; "n/a" when none
}

// series picks one figure of a point; ok is false where it has none.
type series struct {
	name, class string
	value       func(point) (v float64, ok bool)
}

// routeCharts draws the route's charts over [from, to].
func routeCharts(ps []point, from, to time.Time) []chart {
	perMinute := func(f func(point) float64) func(point) (float64, bool) {
		return func(p point) (float64, bool) { return f(p), true }
	}
	seconds := func(f func(point) *float64) func(point) (float64, bool) {
		return func(p point) (float64, bool) {
			if v := f(p); v != nil {
				return *v * 1000, true // drawn in ms
			}
			return 0, false
		}
	}
	return []chart{
		drawChart("throughput", "Jobs per minute", "/min", ps, from, to, []series{
			{"done", "done", perMinute(func(p point) float64 { return p.Done })},
			{"failed", "failed", perMinute(func(p point) float64 { return p.Failed })},
		}),
		drawChart("run", "Run time in php-fpm", "ms", ps, from, to, []series{
			{"p50", "p50", seconds(func(p point) *float64 { return p.RunP50 })},
			{"p95", "p95", seconds(func(p point) *float64 { return p.RunP95 })},
		}),
		drawChart("wait", "Wait from publication to attempt", "ms", ps, from, to, []series{
			{"p50", "p50", seconds(func(p point) *float64 { return p.WaitP50 })},
			{"p95", "p95", seconds(func(p point) *float64 { return p.WaitP95 })},
		}),
		drawChart("ready", "Jobs ready in the queue", "jobs", ps, from, to, []series{
			{"ready", "ready", func(p point) (float64, bool) {
				if p.Ready == nil {
					return 0, false
				}
				return float64(*p.Ready), true
			}},
		}),
	}
}

// drawChart scales the series of ps into the drawing area: time from
// from to to across, 0 to a round value above the highest point upwards.
func drawChart(id, title, unit string, ps []point, from, to time.Time, ss []series) chart {
	c := chart{ID: id, Title: title, Unit: unit}
	top := 0.0
	for _, s := range ss {
		for _, p := range ps {
			if v, ok := s.value(p); ok {
				top = max(top, v)
			}
		}
	}
	top = roundUp(top)
	c.Top, c.Half = figure(top, unit), figure(top/2, unit)
	c.From, c.To = from.UTC().Format("15:04"), to.UTC().Format("15:04 UTC")
	width := to.Sub(from).Seconds()
	var said []string
	for _, s := range ss {
		l := chartLine{Name: s.name, Class: s.class, Last: "n/a"}
		var seg []string
		flush := func() {
			if len(seg) > 0 {
				l.Segments = append(l.Segments, strings.Join(seg, " "))
				seg = nil
			}
		}
		for _, p := range ps {
			v, ok := s.value(p)
			if !ok {
				flush()
				continue
			}
			x := chartWidth * p.At.Sub(from).Seconds() / width
			y := chartHeight - chartHeight*v/top
			seg = append(seg, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
			l.Last = figure(v, unit)
		}
		flush()
		c.Lines = append(c.Lines, l)
		said = append(said, s.name+" "+l.Last)
	}
	c.Summary = fmt.Sprintf("%s over the last %s, latest: %s", title, span(to.Sub(from).Round(time.Minute)), strings.Join(said, ", "))
	return c
}

// roundUp returns the smallest of 1, 2 or 5 times a power of ten that is
// at least v (1 for v ≤ 1): a chart's top.
func roundUp(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// figure shows a value with its unit: whole from 100 up (and counts of
// jobs), one decimal from 10, two below.
func figure(v float64, unit string) string {
	decimals := 2
	switch {
	case v >= 100 || unit == "jobs":
		decimals = 0
	case v >= 10:
		decimals = 1
	}
	return strconv.FormatFloat(v, 'f', decimals, 64) + " " + unit
}

// span writes a window as "15m", "1h" or "36h": whole hours or minutes
// without the zero parts time.Duration.String adds; else as it does.
func span(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
