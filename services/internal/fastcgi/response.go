package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// Response is a responder's answer, read to the end while keeping only its
// header and the start of its body, so that memory does not grow with what
// the script prints.
type Response struct {
	// Status is the code of the CGI Status header ("404 Not Found" gives
	// 404), or 200 when there is none: php-fpm sends none for a plain 200.
	Status int
	// Header holds the CGI response headers with canonical keys, without
	// Status. It is never nil.
	Header http.Header
	// Body is the start of STDOUT after the header block: at most
	// Options.MaxBodyKept bytes.
	Body []byte
	// BodySize is the length of the whole body in bytes, of which Body is
	// the start.
	BodySize int64
	// AppStatus is the application status from END_REQUEST. It is reported
	// only: php-fpm sends 0 even when a script calls exit(3).
	AppStatus uint32
}

// responseReader reads one response from a connection through fixed-size
// buffers. It is reused, through Client's pool, from request to request.
type responseReader struct {
	r         *bufio.Reader // the connection
	maxHeader int           // bytes of CGI header block, blank line included
	maxBody   int           // bytes of body kept in Response.Body

	// The header block is collected here, then parsed by textproto through
	// blockR; all three are kept to spare every response their allocation.
	block    []byte
	blockSrc bytes.Reader
	blockR   *bufio.Reader

	// State of the response being read.
	resp       *Response
	headerDone bool  // the header block ended, or headerErr was set
	headerErr  error // a malformed or oversized block; STDOUT is drained
	stdoutSeen bool
	stderr     io.Writer // nil once discarding
	lineStart  int       // offset in block of the line being collected
}

// blockKeep is the largest header block buffer kept between responses; a
// rare larger one is left to the garbage collector.
const blockKeep = 8 << 10

// newResponseReader returns a reader of responses from src whose header
// block may take maxHeader bytes and whose body is kept up to maxBody bytes.
func newResponseReader(src io.Reader, maxHeader, maxBody int) *responseReader {
	return &responseReader{
		r:         bufio.NewReader(src),
		maxHeader: maxHeader,
		maxBody:   maxBody,
		blockR:    bufio.NewReaderSize(nil, 1024),
	}
}

// read reads records until END_REQUEST and returns the response, writing
// STDERR content to stderr (nil discards it) as it arrives. A record that
// cannot be read whole, the connection closing before END_REQUEST included,
// is ErrProtocol: the server did not finish its answer. So is a malformed
// header block, which is reported only after END_REQUEST, so that the
// script is not cut off by a closed connection.
func (rr *responseReader) read(stderr io.Writer) (*Response, error) {
	rr.resp = &Response{}
	rr.headerDone, rr.headerErr, rr.stdoutSeen = false, nil, false
	rr.block, rr.lineStart = rr.block[:0], 0
	rr.stderr = stderr
	defer func() {
		rr.resp, rr.stderr = nil, nil
		if cap(rr.block) > blockKeep {
			rr.block = nil
		}
	}()

	for first := true; ; first = false {
		h, err := readRecordHeader(rr.r)
		if err != nil {
			if first && rr.r.Buffered() == 0 {
				return nil, fmt.Errorf("%w: %w: %w", ErrProtocol, errNoAnswer, err)
			}
			return nil, closedEarly(err)
		}
		switch h.typ {
		case typeStdout, typeStderr:
			if err := rr.content(h.typ, h.contentLen); err != nil {
				return nil, closedEarly(err)
			}
		case typeEndRequest:
			return rr.end(h)
		default:
			return nil, fmt.Errorf("%w: unexpected record type %d", ErrProtocol, h.typ)
		}
		if _, err := rr.r.Discard(h.padLen); err != nil {
			return nil, closedEarly(err)
		}
	}
}

// errNoAnswer marks a connection that ended before a single byte of the
// response came: with errors.Is, Client.Do tells a kept connection that
// php-fpm closed on its own schedule (see resendable) from a response cut
// short.
var errNoAnswer = errors.New("connection closed with no answer")

// closedEarly wraps a read error that cut a response short, unless it is
// already a protocol error.
func closedEarly(err error) error {
	if errors.Is(err, ErrProtocol) {
		return err
	}
	return fmt.Errorf("%w: connection closed before END_REQUEST: %w", ErrProtocol, err)
}

// content passes the n content bytes of a STDOUT or STDERR record on as
// they arrive, straight from the reader's buffer.
func (rr *responseReader) content(typ byte, n int) error {
	for n > 0 {
		// Take what is buffered, reading only when nothing is.
		if rr.r.Buffered() == 0 {
			if _, err := rr.r.Peek(1); err != nil {
				return err
			}
		}
		p, _ := rr.r.Peek(min(n, rr.r.Buffered()))
		if typ == typeStdout {
			rr.stdout(p)
		} else if rr.stderr != nil {
			if _, err := rr.stderr.Write(p); err != nil {
				rr.stderr = nil
			}
		}
		rr.r.Discard(len(p)) // Cannot fail: the bytes were peeked.
		n -= len(p)
	}
	return nil
}

// stdout takes the next piece of STDOUT: header block lines until the blank
// line that ends the block, then body.
func (rr *responseReader) stdout(p []byte) {
	rr.stdoutSeen = true
	for len(p) > 0 && !rr.headerDone {
		line := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			line = p[:i+1]
		}
		if len(rr.block)+len(line) > rr.maxHeader {
			rr.headerDone = true
			rr.headerErr = fmt.Errorf("%w: CGI header block longer than %d bytes", ErrProtocol, rr.maxHeader)
			return
		}
		// textproto would join a folded line to the one before; CGI
		// responses have no reason to fold (RFC 3875, section 6.3).
		if len(rr.block) == rr.lineStart && (line[0] == ' ' || line[0] == '\t') {
			rr.headerDone = true
			rr.headerErr = fmt.Errorf("%w: folded line in CGI header block", ErrProtocol)
			return
		}
		rr.block = append(rr.block, line...)
		p = p[len(line):]
		if i < 0 {
			return // The line goes on in the next piece.
		}
		// A line of just "\n" or "\r\n" ends the block.
		if n := len(rr.block) - rr.lineStart; n == 1 || n == 2 && rr.block[rr.lineStart] == '\r' {
			rr.headerDone = true
			rr.resp.Status, rr.resp.Header, rr.headerErr = rr.parseHeader()
		}
		rr.lineStart = len(rr.block)
	}
	if rr.headerErr != nil {
		return // Drained, not kept.
	}
	rr.resp.BodySize += int64(len(p))
	if keep := min(len(p), rr.maxBody-len(rr.resp.Body)); keep > 0 {
		rr.resp.Body = append(rr.resp.Body, p[:keep]...)
	}
}

// parseHeader parses the collected header block with net/textproto. Lines
// may end in "\r\n" or "\n". The Status header gives the status and is
// removed; without it the status is 200. A malformed line or Status is
// ErrProtocol; stdout has already refused folded lines.
func (rr *responseReader) parseHeader() (int, http.Header, error) {
	rr.blockSrc.Reset(rr.block)
	rr.blockR.Reset(&rr.blockSrc)
	tp := textproto.Reader{R: rr.blockR}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: malformed CGI header block: %w", ErrProtocol, err)
	}
	for key := range mh {
		// textproto accepts, uncanonicalized, a key with a space in it
		// (go.dev/issue/34540); no CGI program means one.
		if strings.IndexByte(key, ' ') >= 0 {
			return 0, nil, fmt.Errorf("%w: malformed CGI header key %q", ErrProtocol, key)
		}
	}
	status := http.StatusOK
	if values, ok := mh["Status"]; ok {
		for _, v := range values {
			var ok bool
			if status, ok = parseStatus(v); !ok {
				return 0, nil, fmt.Errorf("%w: malformed Status header %q", ErrProtocol, v)
			}
		}
		delete(mh, "Status")
	}
	return status, http.Header(mh), nil
}

// parseStatus parses a CGI Status value such as "404" or "404 Not Found"
// (RFC 3875, section 6.3.3).
func parseStatus(v string) (int, bool) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' {
		return 0, false
	}
	code := 0
	for i := range 3 {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 100
}

// end reads the END_REQUEST record whose header is h and turns it into the
// result of the request (FastCGI 1.0, section 5.5).
func (rr *responseReader) end(h recordHeader) (*Response, error) {
	if h.contentLen != 8 {
		return nil, fmt.Errorf("%w: END_REQUEST content length %d, want 8", ErrProtocol, h.contentLen)
	}
	b, err := rr.r.Peek(8)
	if err != nil {
		return nil, closedEarly(err)
	}
	appStatus, protocolStatus := binary.BigEndian.Uint32(b), b[4]
	// Consume the record whole, so that a kept connection starts clean.
	if _, err := rr.r.Discard(8 + h.padLen); err != nil {
		return nil, closedEarly(err)
	}

	switch protocolStatus {
	case statusRequestComplete:
	case statusOverloaded:
		return nil, fmt.Errorf("%w: server overloaded", ErrUnavailable)
	case statusCantMultiplex:
		return nil, fmt.Errorf("%w: server cannot multiplex connections", ErrProtocol)
	case statusUnknownRole:
		return nil, fmt.Errorf("%w: server does not support the responder role", ErrProtocol)
	default:
		return nil, fmt.Errorf("%w: unknown protocol status %d", ErrProtocol, protocolStatus)
	}
	switch {
	case rr.headerErr != nil:
		return nil, rr.headerErr
	case !rr.headerDone && rr.stdoutSeen:
		return nil, fmt.Errorf("%w: CGI header block not terminated", ErrProtocol)
	case !rr.headerDone:
		// Empty STDOUT: a 200 with no headers and no body.
		rr.resp.Status, rr.resp.Header = http.StatusOK, http.Header{}
	}
	rr.resp.AppStatus = appStatus
	return rr.resp, nil
}
