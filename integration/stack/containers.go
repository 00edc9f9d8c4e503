package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Exec runs cmd in c and returns its exit status and its output, stdout and
// stderr together.
func Exec(ctx context.Context, c *testcontainers.DockerContainer, cmd ...string) (int, string, error) {
	code, r, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return 0, "", fmt.Errorf("exec %s: %w", cmd[0], err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return 0, "", fmt.Errorf("exec %s: read output: %w", cmd[0], err)
	}
	return code, string(out), nil
}

// WorkerLines returns the lines of php/worker.php's log, none before the
// first job created it.
func (s *Stack) WorkerLines(ctx context.Context) ([]string, error) {
	return s.LogLines(ctx, WorkerLog)
}

// LogLines returns the lines of the php-fpm container's file path (a
// worker's log, such as ReportLog), none before the first job created it.
func (s *Stack) LogLines(ctx context.Context, path string) ([]string, error) {
	return FileLines(ctx, s.PHP, path)
}

// FileLines returns the lines of the file path in c, running or stopped,
// none if it does not exist (yet).
func FileLines(ctx context.Context, c *testcontainers.DockerContainer, path string) ([]string, error) {
	r, err := c.CopyFileFromContainer(ctx, path)
	if err != nil {
		// Engines word "no such file" in several ways.
		if msg := strings.ToLower(err.Error()); strings.Contains(msg, "no such") || strings.Contains(msg, "not found") || strings.Contains(msg, "could not find") {
			return nil, nil
		}
		return nil, fmt.Errorf("read worker log: %w", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read worker log: %w", err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
}

// Logs returns what c wrote to stdout and stderr so far.
func Logs(ctx context.Context, c *testcontainers.DockerContainer) (string, error) {
	r, err := c.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("container logs: %w", err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return "", fmt.Errorf("read container logs: %w", err)
	}
	return buf.String(), nil
}

// ExitCode returns the exit status of c, which has exited.
func ExitCode(ctx context.Context, c *testcontainers.DockerContainer) (int, error) {
	state, err := c.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("container state: %w", err)
	}
	return state.ExitCode, nil
}

// ExtractFile copies the file src out of image into dst on the host, with
// mode, without running the image.
func (s *Stack) ExtractFile(ctx context.Context, image, src, dst string, mode os.FileMode) (err error) {
	s.started++
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithName(fmt.Sprintf("%s-extract-%d", s.Name, s.started)),
		testcontainers.WithNoStart(),
	)
	s.track(c)
	if err != nil {
		return fmt.Errorf("create a container of %s: %w", image, err)
	}
	defer func() { err = errors.Join(err, s.Remove(ctx, c)) }()
	r, err := c.CopyFileFromContainer(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s out of %s: %w", src, image, err)
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
