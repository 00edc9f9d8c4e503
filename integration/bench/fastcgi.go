package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// The bench drives the pool itself, without the daemon, as baseline (a). It
// cannot use the daemon's FastCGI client, which is internal to services/, so
// it has this one: the least a client can do, the responder role with one
// request per connection, as the daemon uses it by default.

// FastCGI record types and the responder role, from the FastCGI 1.0 spec.
const (
	fcgiBeginRequest = 1
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiStderr       = 7
	fcgiResponder    = 1
	fcgiMaxContent   = 65535
)

// errFastCGI means that the pool did not answer a request as FastCGI
// prescribes.
var errFastCGI = errors.New("fastcgi: protocol error")

// param is one FastCGI parameter (a CGI variable).
type param struct{ name, value string }

// fastcgiRequest sends one request to the pool at the unix socket path, on
// a new connection that ctx bounds, and returns the status of the answer
// (200 if the script set none) and what the script wrote to stderr.
func fastcgiRequest(ctx context.Context, path string, params []param, body []byte) (status int, stderr []byte, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, nil, fmt.Errorf("fastcgi: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// The bench's requests are small: written whole, they fit in the
	// socket's buffer before the pool reads a byte.
	if _, err := conn.Write(appendRequest(nil, params, body)); err != nil {
		return 0, nil, fmt.Errorf("fastcgi: write: %w", err)
	}
	stdout, stderr, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		return 0, nil, err
	}
	status, err = parseStatus(stdout)
	return status, stderr, err
}

// appendRequest appends the records of a request (id 1, connection closed
// after it) to dst: BEGIN_REQUEST, the params, the body, each stream ended
// by an empty record.
func appendRequest(dst []byte, params []param, body []byte) []byte {
	dst = appendRecord(dst, fcgiBeginRequest, []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0})
	var p []byte
	for _, kv := range params {
		p = appendLength(p, len(kv.name))
		p = appendLength(p, len(kv.value))
		p = append(append(p, kv.name...), kv.value...)
	}
	dst = appendStream(dst, fcgiParams, p)
	return appendStream(dst, fcgiStdin, body)
}

// appendStream appends data as records of type typ, then the empty record
// that ends the stream.
func appendStream(dst []byte, typ byte, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), fcgiMaxContent)
		dst = appendRecord(dst, typ, data[:n])
		data = data[n:]
	}
	return appendRecord(dst, typ, nil)
}

// appendRecord appends one record of request id 1, without padding.
func appendRecord(dst []byte, typ byte, content []byte) []byte {
	dst = append(dst, 1, typ, 0, 1) // version 1, type, request id 1
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(content)))
	dst = append(dst, 0, 0) // no padding, reserved
	return append(dst, content...)
}

// appendLength appends a name-value pair's length: one byte below 128, else
// four with the top bit set.
func appendLength(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|1<<31)
}

// readResponse reads records up to END_REQUEST and returns the streams.
func readResponse(r *bufio.Reader) (stdout, stderr []byte, err error) {
	var header [8]byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return nil, nil, fmt.Errorf("%w: read record: %v", errFastCGI, err)
		}
		typ := header[1]
		content := make([]byte, binary.BigEndian.Uint16(header[4:6]))
		if _, err := io.ReadFull(r, content); err != nil {
			return nil, nil, fmt.Errorf("%w: read record: %v", errFastCGI, err)
		}
		if _, err := r.Discard(int(header[6])); err != nil {
			return nil, nil, fmt.Errorf("%w: read padding: %v", errFastCGI, err)
		}
		switch typ {
		case fcgiStdout:
			stdout = append(stdout, content...)
		case fcgiStderr:
			stderr = append(stderr, content...)
		case fcgiEndRequest:
			if len(content) < 8 || content[4] != 0 { // 0: FCGI_REQUEST_COMPLETE
				return nil, nil, fmt.Errorf("%w: request not complete: %v", errFastCGI, content)
			}
			return stdout, stderr, nil
		default:
			return nil, nil, fmt.Errorf("%w: unexpected record type %d", errFastCGI, typ)
		}
	}
}

// parseStatus returns the status of a CGI answer: its Status header's code,
// or 200 without one, as for an empty answer.
func parseStatus(stdout []byte) (int, error) {
	if len(stdout) == 0 {
		return 200, nil
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(stdout))).ReadMIMEHeader()
	if err != nil {
		return 0, fmt.Errorf("%w: header: %v", errFastCGI, err)
	}
	v := h.Get("Status")
	if v == "" {
		return 200, nil
	}
	code, _, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return 0, fmt.Errorf("%w: status %q", errFastCGI, v)
	}
	return n, nil
}
