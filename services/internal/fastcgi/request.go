package fastcgi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPairSize is the largest encoded name-value pair, in bytes (see
// PairSize), that can be sent. php-fpm parses each FCGI_PARAMS record on its
// own and drops the whole request when a pair straddles two records
// (php-src main/fastcgi.c, fcgi_get_params), so a pair must fit in one
// record, whose content is at most 65535 bytes (FastCGI 1.0, section 3.3).
const MaxPairSize = 65535

// ErrParamTooLarge means a parameter's encoded pair is larger than
// MaxPairSize. Do returns it, wrapped and naming the parameter, before it
// sends anything.
var ErrParamTooLarge = errors.New("fastcgi: parameter too large for one FCGI_PARAMS record")

// PairSize returns the encoded size of a name-value pair in bytes: a length
// prefix of 1 byte (length below 128) or 4 bytes for the name and for the
// value (FastCGI 1.0, section 3.4), then the name and the value. A pair
// larger than MaxPairSize cannot be sent, so callers can leave it out.
func PairSize(name, value string) int {
	return lenSize(len(name)) + lenSize(len(value)) + len(name) + len(value)
}

func lenSize(n int) int {
	if n < 128 {
		return 1
	}
	return 4
}

// Param is one CGI parameter. Parameters are a slice rather than a map so
// they are sent in the order given.
type Param struct{ Name, Value string }

// Request is one FastCGI responder request.
type Request struct {
	// Params are sent exactly as given; the client adds none. In particular
	// CONTENT_LENGTH must be set to len(Body) when there is a body, or the
	// script will not see it. Each pair must fit MaxPairSize.
	Params []Param
	// Body is sent as FCGI_STDIN, in records of up to 65535 bytes.
	Body []byte
	// Stderr receives the content of each FCGI_STDERR record as it
	// arrives, in one or more Write calls per record, so that memory does
	// not grow with what the script logs. Nil discards it. A failing
	// writer does not fail the request, which has run anyway: the rest of
	// the stream is discarded.
	Stderr io.Writer
}

// appendRequest appends the complete request to dst: BEGIN_REQUEST with
// flags, the PARAMS stream and the STDIN stream, each closed by an empty
// record. PARAMS records carry whole pairs only, packed as many to a record
// as fit (see MaxPairSize for why). A pair larger than MaxPairSize is an
// error wrapping ErrParamTooLarge, and dst comes back unchanged.
func appendRequest(dst []byte, req *Request, flags byte) ([]byte, error) {
	start := len(dst)
	dst = appendBeginRequest(dst, flags)

	at := -1 // offset of the open PARAMS record, if any
	for _, p := range req.Params {
		size := PairSize(p.Name, p.Value)
		if size > MaxPairSize {
			return dst[:start], fmt.Errorf("%w: %.64q is %d bytes encoded, the limit is %d",
				ErrParamTooLarge, p.Name, size, MaxPairSize)
		}
		if at >= 0 && len(dst)-at-headerLen+size > maxRecord {
			dst = endRecord(dst, at, typeParams)
			at = -1
		}
		if at < 0 {
			dst, at = beginRecord(dst)
		}
		dst = appendLen(dst, len(p.Name))
		dst = appendLen(dst, len(p.Value))
		dst = append(dst, p.Name...)
		dst = append(dst, p.Value...)
	}
	if at >= 0 {
		dst = endRecord(dst, at, typeParams)
	}
	dst = appendEndOfStream(dst, typeParams)
	return appendStream(dst, typeStdin, req.Body), nil
}

// appendLen appends a name or value length: one byte below 128, otherwise
// four bytes, big endian, with the high bit set (FastCGI 1.0, section 3.4).
func appendLen(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|1<<31)
}
