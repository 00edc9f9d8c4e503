// Package envhelp lists the environment variables a command reads, from
// its configuration struct's envconfig tags: for its -h text (Print: one
// line each, with the variable's default and description), and as the
// Markdown tables of its README (Markdown), which Sync and SyncFile keep
// equal to the code between marker lines.
package envhelp

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
)

// table is the template of Print's lines; usage_key and the others are
// envconfig's template functions.
const table = `  VARIABLE	DEFAULT	DESCRIPTION
{{range .}}  {{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`

// Print writes to w a table of the variables that envconfig reads into spec,
// a pointer to a struct with envconfig tags: name, default (empty if none)
// and description, in the struct's order, columns aligned. The variables of
// a struct embedded anonymously (of an exported type, or envconfig skips
// it) come where it is embedded. It returns envconfig's error for a spec
// that is not such a pointer, or w's.
func Print(w io.Writer, spec any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := envconfig.Usagef("", spec, tw, table); err != nil {
		return fmt.Errorf("list environment variables: %w", err)
	}
	return tw.Flush()
}
