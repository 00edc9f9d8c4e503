package amqptest

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPropertiesRoundTrip(t *testing.T) {
	in := allProperties("id")
	in.UserId = "user"
	var e enc
	e.properties(in)
	var out amqp.Publishing
	d := &dec{b: e.Bytes()}
	d.properties(&out)
	if d.err != nil || len(d.b) != 0 {
		t.Fatalf("decode: %v, %d bytes left", d.err, len(d.b))
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the properties:\n got %#v\nwant %#v", out, in)
	}
	truncated := &dec{b: e.Bytes()[:e.Len()-3]}
	truncated.properties(&out)
	if truncated.err == nil {
		t.Error("truncated properties decoded without an error")
	}
}

// dialFake connects a client to srv and opens a channel; the test's end
// closes both.
func dialFake(t *testing.T, srv *Server) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	return (&broker{url: srv.URL, fake: srv}).dial(t)
}

// declareQuorum declares the durable quorum queue name.
func declareQuorum(t *testing.T, ch *amqp.Channel, name string) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
}

func TestPublishConsumeSettle(t *testing.T) {
	srv := NewServer(t)
	_, ch := dialFake(t, srv)
	declareQuorum(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3*defaultFrameMax) // split over several frames both ways
	for _, m := range []amqp.Publishing{
		{MessageId: "1", Body: []byte("one"), Headers: amqp.Table{"x-attempt": int64(2)}},
		{MessageId: "2", Body: big},
		{MessageId: "3"},
	} {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", "q", true, false, m)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %s: acked %v, %v", m.MessageId, ok, err)
		}
	}
	if got := srv.Published(); len(got) != 3 || got[0].RoutingKey != "q" || !got[0].Mandatory || !bytes.Equal(got[1].Body, big) {
		t.Fatalf("published %d messages, want the 3 as sent", len(got))
	}
	if d := srv.Declared(); len(d) != 1 || !d[0].Durable || d[0].Args["x-queue-type"] != "quorum" {
		t.Errorf("declared %+v, want the durable quorum queue q", d)
	}

	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("q", "tag", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := receive(t, deliveries)
	if d.MessageId != "1" || string(d.Body) != "one" || d.Headers["x-attempt"] != int64(2) || d.Redelivered {
		t.Errorf("first delivery %q %q %v redelivered %v, want message 1 as published", d.MessageId, d.Body, d.Headers, d.Redelivered)
	}
	noDelivery(t, deliveries, fakeQuiet) // prefetch 1
	if q, _ := srv.Queue("q"); q.Ready != 2 || q.Unacked != 1 || q.Consumers != 1 {
		t.Errorf("queue %+v, want 2 ready, 1 unacked, 1 consumer", q)
	}

	d.Nack(false, true)
	d = receive(t, deliveries)
	if d.MessageId != "1" || !d.Redelivered {
		t.Errorf("after a requeue got %q redelivered %v, want message 1 again, redelivered", d.MessageId, d.Redelivered)
	}
	d.Ack(false)
	if d = receive(t, deliveries); d.MessageId != "2" || !bytes.Equal(d.Body, big) {
		t.Errorf("got %q with %d bytes, want message 2 whole", d.MessageId, len(d.Body))
	}
	d.Reject(false)
	d = receive(t, deliveries)
	d.Ack(false)
	WaitFor(t, "four settlements", func() bool { return len(srv.Settled()) == 4 })
	var methods []string
	for _, s := range srv.Settled() {
		methods = append(methods, s.Message.MessageId+" "+s.Method)
	}
	if want := []string{"1 nack", "1 ack", "2 reject", "3 ack"}; !slices.Equal(methods, want) {
		t.Errorf("settled %v, want %v", methods, want)
	}
	if q, _ := srv.Queue("q"); q.Ready != 0 || q.Unacked != 0 {
		t.Errorf("queue %+v, want empty", q)
	}
}

func TestVerdictsAndReturns(t *testing.T) {
	srv := NewServer(t)
	srv.SetOnPublish(func(seq int, p Publishing) Verdict {
		if p.MessageId == "nack" {
			return Nack
		}
		return Ack
	})
	_, ch := dialFake(t, srv)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	publish := func(id, queue string) bool {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", queue, true, false, amqp.Publishing{MessageId: id})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := dc.WaitContext(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if publish("nack", "missing") {
		t.Error("message acked, want nacked")
	}
	if !publish("unroutable", "missing") {
		t.Error("unroutable message nacked, want returned and acked")
	}
	select {
	case r := <-returns:
		if r.MessageId != "unroutable" || r.ReplyCode != 312 || r.RoutingKey != "missing" {
			t.Errorf("return %+v, want the unroutable message, 312", r)
		}
	default:
		t.Error("no return before the confirm")
	}
}

func TestServerCancelAndRequeueOnClose(t *testing.T) {
	srv := NewServer(t)
	conn, ch := dialFake(t, srv)
	declareQuorum(t, ch, "q")
	if err := srv.Enqueue("q", amqp.Publishing{MessageId: "a"}); err != nil {
		t.Fatal(err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	deliveries, err := ch.Consume("q", "tag", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, deliveries)
	if n := srv.CancelConsumers("q"); n != 1 {
		t.Fatalf("cancelled %d consumers, want 1", n)
	}
	if tag := <-cancels; tag != "tag" {
		t.Errorf("cancel notified %q, want tag", tag)
	}
	if _, ok := <-deliveries; ok {
		t.Error("deliveries still open after the server's cancel")
	}
	if q, _ := srv.Queue("q"); q.Unacked != 1 || q.Consumers != 0 {
		t.Errorf("queue %+v, want the delivery still unacked, no consumer", q)
	}
	ch.Close()
	WaitFor(t, "the delivery requeued", func() bool { q, _ := srv.Queue("q"); return q.Ready == 1 && q.Unacked == 0 })

	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.Consume("q", "tag2", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "delivered again", func() bool { q, _ := srv.Queue("q"); return q.Unacked == 1 })
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if !srv.Drop(srv.Conns()[0].Number) {
		t.Fatal("no connection to drop")
	}
	if e := <-connClosed; e == nil {
		t.Error("dropped connection closed without an error")
	}
	if q, _ := srv.Queue("q"); q.Ready != 1 || q.Consumers != 0 {
		t.Errorf("queue %+v after the drop, want the message ready, no consumer", q)
	}
	if !srv.DeleteQueue("q") {
		t.Error("DeleteQueue found no queue")
	}
	if _, ok := srv.Queue("q"); ok {
		t.Error("queue still there after DeleteQueue")
	}
}

// TestAlarmConnInfo: Conns reports a connection blocked from the publish
// that blocked it under the alarm until the alarm clears; raising the
// alarm blocks none (the timing itself is the scenarios', as on RabbitMQ).
func TestAlarmConnInfo(t *testing.T) {
	srv := NewServer(t)
	conn, ch := dialFake(t, srv)
	declareQuorum(t, ch, "q")
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 2))
	blocked := func() bool { return srv.Conns()[0].Blocked }
	for round := range 2 { // blocked again under the next alarm
		srv.SetAlarm(true)
		if blocked() {
			t.Fatalf("round %d: blocked by the alarm alone", round)
		}
		if err := ch.PublishWithContext(t.Context(), "", "q", false, false, amqp.Publishing{MessageId: "blocking"}); err != nil { // not mandatory, not immediate
			t.Fatal(err)
		}
		waitBlocking(t, blocks, true)
		if !blocked() {
			t.Errorf("round %d: Conns says not blocked after connection.blocked", round)
		}
		srv.SetAlarm(false)
		waitBlocking(t, blocks, false)
		if blocked() {
			t.Errorf("round %d: Conns says blocked after the alarm", round)
		}
	}
	WaitFor(t, "both publishes queued", func() bool { q, _ := srv.Queue("q"); return q.Ready == 2 })
}
