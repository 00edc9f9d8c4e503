package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// point is one concurrency of the sweep: its rate's median, min and max.
type point struct {
	x            int
	med, lo, hi  float64
	haveMeasured bool
}

// The plot's size and margins, in pixels.
const (
	plotW, plotH     = 800, 480
	marginL, marginR = 80, 30
	marginT, marginB = 50, 60
	tickLen          = 5
)

var (
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{210, 210, 210, 255}
	blue  = color.RGBA{31, 90, 180, 255}
	red   = color.RGBA{200, 40, 40, 255}
)

// sweepPoints returns the sweep's figures as points, in sweep order.
func sweepPoints(r *report) []point {
	var pts []point
	for _, c := range sweep {
		s, ok := summarize(r.values(secSweep, sweepName(c)))
		pts = append(pts, point{x: c, med: s.median, lo: s.min, hi: s.max, haveMeasured: ok})
	}
	return pts
}

// writePlot draws throughput against concurrency as a PNG: the median of
// each concurrency joined by a line, its min and max as a bar, the x axis
// logarithmic; and, if limit is positive, a dashed line at limit jobs/s
// named limitName.
func writePlot(w io.Writer, title string, pts []point, limit float64, limitName string) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	top := 0.0
	for _, p := range pts {
		if p.haveMeasured {
			top = math.Max(top, p.hi)
		}
	}
	if top == 0 {
		return fmt.Errorf("plot: no figure to draw")
	}
	if limit > 0 && !math.IsNaN(limit) {
		top = math.Max(top, limit)
	}
	step := niceStep(top / 5)
	top = math.Ceil(top/step) * step
	x0, x1 := float64(marginL), float64(plotW-marginR)
	y0, y1 := float64(plotH-marginB), float64(marginT)
	lx0, lx1 := math.Log(float64(sweep[0])), math.Log(float64(sweep[len(sweep)-1]))
	px := func(c int) int { return int(x0 + (math.Log(float64(c))-lx0)/(lx1-lx0)*(x1-x0-20) + 10) }
	py := func(v float64) int { return int(y0 - v/top*(y0-y1)) }

	// Grid and y ticks.
	for v := 0.0; v <= top+step/2; v += step {
		y := py(v)
		hline(img, int(x0), int(x1), y, grey)
		hline(img, int(x0)-tickLen, int(x0), y, black)
		label := strconv.FormatFloat(v, 'f', -1, 64)
		text(img, int(x0)-tickLen-4-width(label), y+4, label)
	}
	// Axes.
	hline(img, int(x0), int(x1), int(y0), black)
	vline(img, int(x0), int(y1), int(y0), black)
	for _, p := range pts {
		x := px(p.x)
		vline(img, x, int(y0), int(y0)+tickLen, black)
		label := strconv.Itoa(p.x)
		text(img, x-width(label)/2, int(y0)+tickLen+14, label)
	}
	if limit > 0 && !math.IsNaN(limit) {
		y := py(limit)
		for x := int(x0); x <= int(x1); x += 8 {
			hline(img, x, min(x+4, int(x1)), y, red)
		}
		text(img, int(x1)-width(limitName), y-6, limitName)
	}
	// Min-max bars, then the medians joined.
	var prev *image.Point
	for _, p := range pts {
		if !p.haveMeasured {
			prev = nil
			continue
		}
		x := px(p.x)
		vline(img, x, py(p.hi), py(p.lo), blue)
		hline(img, x-4, x+4, py(p.hi), blue)
		hline(img, x-4, x+4, py(p.lo), blue)
		cur := image.Point{x, py(p.med)}
		if prev != nil {
			line(img, *prev, cur, blue)
		}
		for dx := -3; dx <= 3; dx++ {
			for dy := -3; dy <= 3; dy++ {
				img.Set(cur.X+dx, cur.Y+dy, blue)
			}
		}
		label := strconv.FormatFloat(math.Round(p.med), 'f', 0, 64)
		text(img, x+6, cur.Y-6, label)
		prev = &cur
	}
	text(img, (plotW-width(title))/2, 25, title)
	xl := "daemon CONCURRENCY (log scale)"
	text(img, (plotW-width(xl))/2, plotH-15, xl)
	text(img, 8, marginT-12, "jobs/s")
	return png.Encode(w, img)
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func hline(img *image.RGBA, xa, xb, y int, c color.Color) {
	for x := xa; x <= xb; x++ {
		img.Set(x, y, c)
	}
}

func vline(img *image.RGBA, x, ya, yb int, c color.Color) {
	if ya > yb {
		ya, yb = yb, ya
	}
	for y := ya; y <= yb; y++ {
		img.Set(x, y, c)
	}
}

// line draws a straight line two pixels thick from a to b.
func line(img *image.RGBA, a, b image.Point, c color.Color) {
	n := max(abs(b.X-a.X), abs(b.Y-a.Y), 1)
	for i := 0; i <= n; i++ {
		x := a.X + (b.X-a.X)*i/n
		y := a.Y + (b.Y-a.Y)*i/n
		img.Set(x, y, c)
		img.Set(x, y+1, c)
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// text writes s with its baseline at y, starting at x.
func text(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(black), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// width is how many pixels s takes in the plot's font.
func width(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Round()
}
