//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// The vhost and user that the fake broker's scenarios get on RabbitMQ.
const (
	scenarioVHost = "amqptest"
	scenarioUser  = "amqptest"
)

// scenarioLine is a result line of go test -v for one scenario run
// against RabbitMQ.
var scenarioLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): TestScenarios/rabbitmq/(\S+)`)

// TestFakeBrokerMatchesRabbitMQ runs the scenarios of the unit tests' fake
// broker (services/internal/amqptest, TestScenarios) against this RabbitMQ,
// as go test does with AMQPTEST_URL set: every behaviour of RabbitMQ that
// the fake stands in for must hold on the broker too. It fails if one
// fails, or skips, there.
func TestFakeBrokerMatchesRabbitMQ(t *testing.T) {
	s := newStack(t, stackOptions{noDaemon: true, noPHP: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var pw [12]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	for _, args := range [][]string{
		{"add_vhost", scenarioVHost},
		{"add_user", scenarioUser, password},
		{"set_permissions", "-p", scenarioVHost, scenarioUser, ".*", ".*", ".*"},
	} {
		if out, err := s.Rabbitmqctl(ctx, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	endpoint, err := s.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^TestScenarios$/^rabbitmq$", "./services/internal/amqptest/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"AMQPTEST_URL=amqp://"+scenarioUser+":"+password+"@"+endpoint+"/"+scenarioVHost,
		// The scenarios raise a memory alarm, and read the broker's
		// message size limit, with rabbitmqctl.
		"AMQPTEST_RABBITMQCTL=docker exec "+s.RabbitMQ.GetContainerID()+" rabbitmqctl",
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go test -run TestScenarios/rabbitmq ./services/internal/amqptest/ took %s", time.Since(start).Round(time.Second))
	results := map[string][]string{}
	for _, m := range scenarioLine.FindAllStringSubmatch(string(out), -1) {
		results[m[1]] = append(results[m[1]], m[2])
	}
	if err != nil || len(results["FAIL"]) > 0 || len(results["SKIP"]) > 0 || len(results["PASS"]) == 0 {
		t.Fatalf("the fake broker's scenarios on RabbitMQ: %v; passed %d, failed %v, skipped %v:\n%s",
			err, len(results["PASS"]), results["FAIL"], results["SKIP"], tail(strings.TrimSpace(string(out)), 60))
	}
	t.Logf("%d scenarios hold on RabbitMQ as on the fake", len(results["PASS"]))
}
