// Package logging builds the one zerolog logger a service uses.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Formats accepted by New.
const (
	FormatAuto    = "auto"    // console on a terminal, JSON otherwise
	FormatJSON    = "json"    // one JSON object per line
	FormatConsole = "console" // human-readable, for people at a terminal
)

// New returns a logger writing to w at the given level ("debug", "info",
// "warn", "error", ...) in the given format (FormatAuto, FormatJSON or
// FormatConsole). An unknown level or format is an error.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Nop(), fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
	}
	switch format {
	case FormatAuto:
		if IsTerminal(w) {
			w = console(w)
		}
	case FormatJSON:
	case FormatConsole:
		w = console(w)
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q (want auto, json or console)", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func console(w io.Writer) io.Writer {
	return zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
}

// IsTerminal reports whether w is a terminal, where people read lines as
// they come.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
