package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	dockernet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ClusterFormTimeout bounds how long the nodes of a cluster take to see
// each other running once each has started.
const ClusterFormTimeout = 2 * time.Minute

// NodeHost returns the host name of node i (from 1) of a cluster, as
// compose's cluster profile names them: rabbitmq-1, rabbitmq-2, ... The
// node's name is rabbit@ its host name.
func NodeHost(i int) string { return fmt.Sprintf("rabbitmq-%d", i) }

// startCluster starts Options.ClusterNodes nodes of the rabbitmq image as
// one cluster, as compose's cluster profile does: fixed host names, the
// node list in RABBITMQ_CLUSTER_NODES, one Erlang cookie of the stack's
// own. The first node starts alone and forms the cluster; the others start
// after it is up, and join it. It returns once every node sees all of them
// running, so that a quorum queue declared next gets a member on each.
func (s *Stack) startCluster(ctx context.Context) error {
	n := s.opts.ClusterNodes
	hosts := make([]string, n)
	for i := range n {
		hosts[i] = NodeHost(i + 1)
	}
	env := s.rabbitEnv()
	env["RABBITMQ_CLUSTER_NODES"] = strings.Join(hosts, " ")
	env["RABBITMQ_ERLANG_COOKIE"] = randomHex(16)
	for i, host := range hosts {
		c, err := s.runBroker(ctx, host, env)
		if err != nil {
			return fmt.Errorf("start rabbitmq node %d: %w", i+1, err)
		}
		s.Nodes = append(s.Nodes, c)
	}
	s.RabbitMQ = s.Nodes[n-1]
	deadline := time.Now().Add(ClusterFormTimeout)
	for _, c := range s.Nodes {
		for {
			running, err := s.RunningNodes(ctx, c)
			if err == nil && len(running) == n {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("rabbitmq cluster: after %s a node sees %v running (%v), want all %d", ClusterFormTimeout, running, err, n)
			}
			time.Sleep(time.Second)
		}
	}
	return nil
}

// RunningNodes returns the names of the nodes that node c sees running in
// its cluster, itself included (rabbitmqctl cluster_status).
func (s *Stack) RunningNodes(ctx context.Context, c *testcontainers.DockerContainer) ([]string, error) {
	code, out, err := Exec(ctx, c, "rabbitmqctl", "-q", "cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("rabbitmqctl cluster_status exited %d: %s", code, strings.TrimSpace(out))
	}
	return parseRunningNodes(out)
}

// parseRunningNodes reads running_nodes from cluster_status's JSON, which
// may follow other lines (warnings).
func parseRunningNodes(out string) ([]string, error) {
	start := strings.Index(out, "{")
	if start < 0 {
		return nil, fmt.Errorf("cluster_status: no JSON in %q", out)
	}
	var status struct {
		Running []string `json:"running_nodes"`
	}
	if err := json.NewDecoder(strings.NewReader(out[start:])).Decode(&status); err != nil {
		return nil, fmt.Errorf("cluster_status: %w", err)
	}
	slices.Sort(status.Running)
	return status.Running, nil
}

// ClusterEnv returns the environment that points a daemon or a caller of
// user at every node of the cluster, as compose's daemon-cluster and
// caller-cluster have it: AMQP_URL at the first node, AMQP_ADDRESSES
// listing all, and quorum queues.
func (s *Stack) ClusterEnv(user string) map[string]string {
	var addrs []string
	for i := range s.Nodes {
		addrs = append(addrs, NodeHost(i+1)+":5672")
	}
	return map[string]string{
		"AMQP_URL":        s.URLAt(user, addrs[0]),
		"AMQP_ADDRESSES":  strings.Join(addrs, ","),
		"AMQP_QUEUE_TYPE": "quorum",
	}
}

// Disconnect takes node i (from 1) off the stack's network, as a network
// partition does: the others and the clients no longer reach it, nor it
// them, while it keeps running. Reconnect ends that.
func (s *Stack) Disconnect(ctx context.Context, i int) error {
	if _, err := s.Docker.NetworkDisconnect(ctx, s.Network, client.NetworkDisconnectOptions{Container: s.Nodes[i-1].GetContainerID(), Force: true}); err != nil {
		return fmt.Errorf("disconnect %s: %w", NodeHost(i), err)
	}
	return nil
}

// Reconnect puts node i (from 1) back on the stack's network under its
// host name.
func (s *Stack) Reconnect(ctx context.Context, i int) error {
	if _, err := s.Docker.NetworkConnect(ctx, s.Network, client.NetworkConnectOptions{
		Container:      s.Nodes[i-1].GetContainerID(),
		EndpointConfig: &dockernet.EndpointSettings{Aliases: []string{NodeHost(i)}},
	}); err != nil {
		return fmt.Errorf("reconnect %s: %w", NodeHost(i), err)
	}
	return nil
}
