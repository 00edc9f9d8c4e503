package envhelp

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"unicode"

	"github.com/kelseyhightower/envconfig"
)

// variable is one environment variable of a spec, as its envconfig tags
// declare it.
type variable struct {
	Name     string // AMQP_URL
	Default  string // the default tag; empty if none
	Required bool   // the required tag
	Desc     string // the desc tag
}

// variables returns the variables that envconfig reads into spec, in the
// order Print lists them: envconfig gathers them for a template, whose one
// function collects them. Its errors are envconfig's for a spec that is not
// a pointer to a struct, and a required tag that is not a boolean.
func variables(spec any) ([]variable, error) {
	var vars []variable
	collect := func(name string, tag reflect.StructTag) (string, error) {
		v := variable{Name: name, Default: tag.Get("default"), Desc: tag.Get("desc")}
		if req := tag.Get("required"); req != "" {
			b, err := strconv.ParseBool(req)
			if err != nil {
				return "", fmt.Errorf("%s: required tag %q: %w", name, req, err)
			}
			v.Required = b
		}
		vars = append(vars, v)
		return "", nil
	}
	// .Key and .Tags are fields of envconfig's (unexported) varInfo.
	tmpl := template.Must(template.New("variables").
		Funcs(template.FuncMap{"collect": collect}).
		Parse(`{{range .}}{{collect .Key .Tags}}{{end}}`))
	if err := envconfig.Usaget("", spec, io.Discard, tmpl); err != nil {
		return nil, fmt.Errorf("list environment variables: %w", err)
	}
	return vars, nil
}

// Markdown writes to w a Markdown table of the variables that envconfig
// reads into spec, in Print's order: a header row
// "| variable | default | meaning |", then one row per variable with its
// name and default as code spans ("(required)" for a required one,
// "(none)" without a default) and its description as the desc tag says,
// escaped so that Markdown shows it as it is. Every line ends with "\n".
// It returns envconfig's error for a spec that is not a pointer to a
// struct, an error for a description on more than one line (a table row
// cannot hold it) or a required tag that is not a boolean, and w's error.
func Markdown(w io.Writer, spec any) error {
	vars, err := variables(spec)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range vars {
		if strings.ContainsAny(v.Desc, "\r\n") {
			return fmt.Errorf("%s: description on more than one line", v.Name)
		}
		def := "(none)"
		switch {
		case v.Required:
			def = "(required)"
		case v.Default != "":
			def = codeCell(v.Default)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", codeCell(v.Name), def, textCell(v.Desc))
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// codeCell returns s as a code span for a table cell: fenced with one
// backtick more than its longest run of them, padded with spaces when it
// starts or ends with one, and with each | escaped, as a table requires
// even inside code.
func codeCell(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + strings.ReplaceAll(s, "|", `\|`) + fence
}

// textEscaped are the characters that open or close Markdown's inline
// syntax (escapes, code, emphasis, strikethrough, links, HTML, entities,
// math on GitHub) or end a table cell; textCell escapes each with a
// backslash. An underscore between two letters or digits never delimits
// emphasis and is left as it is.
const textEscaped = "\\`*[]<&~$|"

// textCell returns s for a table cell, escaped so that Markdown renders its
// characters as they are.
func textCell(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case strings.ContainsRune(textEscaped, r):
			b.WriteByte('\\')
		case r == '_' && !(i > 0 && isWordRune(rs[i-1]) && i+1 < len(rs) && isWordRune(rs[i+1])):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isWordRune reports whether r is a letter or a digit.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}
