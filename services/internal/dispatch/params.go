package dispatch

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
)

// appendHeaderParams passes the message's AMQP headers to the worker as
// HTTP_X_HEADER_<NAME> params: data only, with names reduced to [A-Z0-9_]
// and values stripped of control characters. Headers that are not scalars
// (tables, arrays) are left out. Params are sorted by name for a stable order.
func appendHeaderParams(params []fastcgi.Param, headers amqp.Table) []fastcgi.Param {
	if len(headers) == 0 {
		return params
	}
	start := len(params)
	for k, v := range headers {
		value, ok := scalar(v)
		if !ok {
			continue
		}
		params = append(params, fastcgi.Param{Name: "HTTP_X_HEADER_" + cgiName(k), Value: cgiValue(value)})
	}
	added := params[start:]
	sort.Slice(added, func(i, j int) bool { return added[i].Name < added[j].Name })
	return params
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case bool:
		return boolParam(v), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// cgiName upper-cases name and turns every byte outside [A-Z0-9] into '_'.
func cgiName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// cgiValue drops control characters, which have no business in a param.
func cgiValue(v string) string {
	if strings.IndexFunc(v, isControl) < 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, v)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// forwardStderr logs each line the worker wrote to its FastCGI stderr.
func forwardStderr(log zerolog.Logger, messageID string, number int64, stderr []byte) {
	for len(stderr) > 0 {
		line, rest, _ := bytes.Cut(stderr, []byte{'\n'})
		stderr = rest
		line = bytes.TrimRight(line, "\r")
		if len(line) > 0 {
			log.Warn().Str("message_id", messageID).Int64("number", number).Str("source", "worker").Bytes("stderr", line).Msg("worker stderr")
		}
	}
}
