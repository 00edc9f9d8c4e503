package amqptest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// scenario is one behaviour of RabbitMQ, as amqp091-go shows it, that the
// tests of the programs rely on the fake to share.
type scenario struct {
	name string
	run  func(t *testing.T, b *broker)
	// fake, if not nil, configures the fake before it starts: to stand in
	// for what RabbitMQ does by itself and the fake does not, where the
	// tests of the programs make it do so too.
	fake func(s *Server)
}

// scenarios are what TestScenarios runs against the fake and RabbitMQ.
var scenarios = []scenario{
	{"queues are declared, counted, purged and deleted", declareQueues, nil},
	{"a missing queue is a channel error 404", missingQueue, nil},
	{"confirmed messages arrive whole and in order", confirmAndDeliver, nil},
	{"a mandatory message no queue takes is returned, then confirmed", mandatoryReturn, nil},
	{"a publish to a missing exchange is a channel error 404", missingExchange, nil},
	{"a full queue that rejects publishes nacks them", fullQueueNacks, func(s *Server) {
		// The fake keeps no length limit: the tests of the programs make a
		// queue full with the Nack verdict, whose answer this checks.
		s.OnPublish = func(seq int, _ Publishing) Verdict {
			if seq > 1 {
				return Nack
			}
			return Ack
		}
	}},
	{"a queue declared again with other arguments is a channel error 406", redeclareOtherArgs, func(s *Server) {
		// The fake compares no arguments: the tests of the programs make
		// it refuse every declare as RabbitMQ refuses this one.
		s.RejectDeclare = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'amqptest.q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"
	}},
	{"a message over the broker's size limit is a channel error 406", messageTooLarge, func(s *Server) {
		// The fake has no size limit: the tests of the programs close the
		// channel with RabbitMQ's text instead.
		s.OnPublish = func(int, Publishing) Verdict { return CloseChannel }
		s.ChannelCloseText = "PRECONDITION_FAILED - message size 12 is larger than configured max size 10"
	}},
	{"a publish with another user's user-id is a channel error 406", foreignUserID, nil},
	{"prefetch bounds each consumer's unacked deliveries", prefetchBounds, nil},
	{"a requeued message comes again first, redelivered", requeueComesFirst, nil},
	{"a message settled without requeue is gone", settleWithoutRequeue, nil},
	{"multiple settles every delivery up to its tag", settleMultiple, nil},
	{"unacked deliveries return in order when their channel or connection closes", returnOnClose, nil},
	{"an unknown delivery tag is a channel error 406", unknownDeliveryTag, nil},
	{"a consumer tag used twice on a channel is a connection error 530", consumerTagReused, nil},
	{"deleting a queue cancels its consumers from the server", deleteCancelsConsumers, nil},
	{"a cancelled consumer gets nothing more and may still ack", clientCancel, nil},
	{"a purge leaves unacked deliveries alone", purgeKeepsUnacked, nil},
	{"a resource alarm blocks publishing connections only", alarmBlocksPublishers, nil},
	{"an alarm blocks a connection at the header of its first publish", alarmBlocksAtFirstPublish, nil},
}

// TestScenarios runs every scenario against the fake and, when AMQPTEST_URL
// names one, against a real RabbitMQ, so that the fake cannot drift from
// the broker unnoticed. The integration test TestFakeBrokerMatchesRabbitMQ
// runs it on both broker generations.
func TestScenarios(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) { sc.run(t, fakeBroker(t, sc.fake)) })
		}
	})
	t.Run("rabbitmq", func(t *testing.T) {
		if os.Getenv(envURL) == "" {
			t.Skipf("%s is empty: no RabbitMQ to run the scenarios against", envURL)
		}
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) { sc.run(t, rabbitMQBroker(t)) })
		}
	})
}

func declareQueues(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.queue(t, "q")
	for range 2 { // declaring it again with the same arguments changes nothing
		q, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "classic"}) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			t.Fatal(err)
		}
		if q.Name != name || q.Messages != 0 || q.Consumers != 0 {
			t.Fatalf("declare-ok %+v, want %s with no message and no consumer", q, name)
		}
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "1"}, amqp.Publishing{MessageId: "2"})
	b.waitQueue(t, conn, name, 2, 0)
	if n, err := ch.QueuePurge(name, false); err != nil || n != 2 { // wait
		t.Fatalf("purge: %d, %v; want 2 messages purged", n, err)
	}
	b.waitQueue(t, conn, name, 0, 0)
	publish(t, ch, name, amqp.Publishing{MessageId: "3"})
	if n, err := ch.QueueDelete(name, false, false, false); err != nil || n != 1 { // even if used or not empty; wait
		t.Fatalf("delete: %d, %v; want 1 message deleted", n, err)
	}
	if n, err := ch.QueueDelete(name, false, false, false); err != nil || n != 0 {
		t.Fatalf("delete of a deleted queue: %d, %v; want 0 and no error", n, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil) // server-named: transient, auto-delete, exclusive, wait
	if err != nil || !strings.HasPrefix(q.Name, "amq.gen-") {
		t.Fatalf("server-named queue %q, %v; want amq.gen-*", q.Name, err)
	}
}

func missingQueue(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.queue(t, "missing")
	for _, op := range []struct {
		name string
		do   func(ch *amqp.Channel) error
	}{
		{"passive declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
			return err
		}},
		{"purge", func(ch *amqp.Channel) error { _, err := ch.QueuePurge(name, false); return err }},
		{"consume", func(ch *amqp.Channel) error {
			_, err := ch.Consume(name, "", false, false, false, false, nil)
			return err
		}},
	} {
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		if err := op.do(ch); amqpCode(err) != amqp.NotFound {
			t.Errorf("%s of a missing queue: %v, want 404", op.name, err)
		}
		closedWith(t, op.name+"'s channel", closed, amqp.NotFound)
		// The connection stays open: a new channel works.
		var err error
		if ch, err = conn.Channel(); err != nil {
			t.Fatalf("after the %s: %v", op.name, err)
		}
	}
}

// allProperties returns a message, without body, that sets every
// property but UserId (which RabbitMQ checks against the user) and holds
// a header of every type AMQP carries; its message-id is id.
func allProperties(id string) amqp.Publishing {
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers: amqp.Table{
			"bool": true, "int8": int8(-8), "uint8": uint8(8), "int16": int16(-16), "uint16": uint16(16),
			"int32": int32(-32), "uint32": uint32(32), "int64": int64(-64), "float32": float32(1.5), "float64": 2.25,
			"decimal": amqp.Decimal{Scale: 2, Value: 314}, "string": "s", "bytes": []byte{1, 2},
			"array": []any{"a", int32(1)}, "time": time.Unix(1700000000, 0), "table": amqp.Table{"k": "v"}, "void": nil,
		},
		DeliveryMode:  amqp.Persistent,
		Priority:      3,
		CorrelationId: "corr",
		ReplyTo:       "reply",
		Expiration:    "60000",
		MessageId:     id,
		Timestamp:     time.Unix(1700000001, 0),
		Type:          "type",
		AppId:         "app",
	}
}

func confirmAndDeliver(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	first := allProperties("1")
	first.Body = []byte("one")
	msgs := []amqp.Publishing{
		first,
		{MessageId: "2", Body: bytes.Repeat([]byte("x"), 3*defaultFrameMax)}, // over several frames both ways
		{MessageId: "3"},
	}
	for i, m := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", name, true, false, m) // mandatory, not immediate
		if err != nil {
			t.Fatal(err)
		}
		if dc.DeliveryTag != uint64(i+1) {
			t.Errorf("confirm tag %d for publish %d", dc.DeliveryTag, i+1)
		}
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %d: acked %v, %v", i+1, ok, err)
		}
	}
	deliveries := consume(t, ch, name, "tag", 0)
	for i, m := range msgs {
		d := receive(t, deliveries)
		got := amqp.Publishing{
			ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, Headers: d.Headers,
			DeliveryMode: d.DeliveryMode, Priority: d.Priority, CorrelationId: d.CorrelationId,
			ReplyTo: d.ReplyTo, Expiration: d.Expiration, MessageId: d.MessageId, Timestamp: d.Timestamp,
			Type: d.Type, UserId: d.UserId, AppId: d.AppId, Body: d.Body,
		}
		// Nil and empty alike.
		if len(m.Headers) == 0 && len(got.Headers) == 0 {
			got.Headers = m.Headers
		}
		if len(m.Body) == 0 && len(got.Body) == 0 {
			got.Body = m.Body
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("delivery %d changed the message:\n got %#v\nwant %#v", i+1, got, m)
		}
		if d.Redelivered || d.Exchange != "" || d.RoutingKey != name || d.ConsumerTag != "tag" || d.DeliveryTag != uint64(i+1) {
			t.Errorf("delivery %d: redelivered %v, exchange %q, routing key %q, consumer %q, tag %d", i+1, d.Redelivered, d.Exchange, d.RoutingKey, d.ConsumerTag, d.DeliveryTag)
		}
		d.Ack(false)
	}
}

func mandatoryReturn(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 2))
	missing := b.queue(t, "missing")
	publish(t, ch, missing, amqp.Publishing{MessageId: "unroutable"}) // acked
	// amqp091-go hands out a return before the confirm that follows it.
	select {
	case r := <-returns:
		if r.MessageId != "unroutable" || r.ReplyCode != amqp.NoRoute || r.ReplyText != "NO_ROUTE" || r.Exchange != "" || r.RoutingKey != missing {
			t.Errorf("return %+v, want the message, 312 NO_ROUTE, its routing key", r)
		}
	default:
		t.Error("no return before the confirm")
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", missing, false, false, amqp.Publishing{MessageId: "dropped"}) // not mandatory
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
		t.Errorf("an unroutable message that is not mandatory: acked %v, %v; want acked", ok, err)
	}
	select {
	case r := <-returns:
		t.Errorf("a message that is not mandatory returned: %+v", r)
	case <-time.After(b.quiet):
	}
}

func missingExchange(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.PublishWithContext(t.Context(), "amqptest.missing", "q", true, false, amqp.Publishing{}); err != nil { // mandatory, not immediate
		t.Fatal(err)
	}
	closedWith(t, "channel", closed, amqp.NotFound)
}

func fullQueueNacks(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.queue(t, "full")
	args := amqp.Table{"x-max-length": int64(1), "x-overflow": "reject-publish"}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	publish(t, ch, name, amqp.Publishing{MessageId: "kept"})
	dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", name, true, false, amqp.Publishing{MessageId: "over"}) // mandatory, not immediate
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(t.Context()); ok || err != nil {
		t.Errorf("a publish to the full queue: acked %v, %v; want nacked", ok, err)
	}
	select {
	case r := <-returns:
		t.Errorf("the nacked message was returned too: %+v", r)
	default:
	}
	b.waitQueue(t, conn, name, 1, 0)
}

func prefetchBounds(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		publish(t, ch, name, amqp.Publishing{MessageId: id})
	}
	deliveries := consume(t, ch, name, "tag", 2)
	// A prefetch set after a consumer started is for the next ones.
	if err := ch.Qos(0, 0, false); err != nil {
		t.Fatal(err)
	}
	first := receive(t, deliveries)
	receive(t, deliveries)
	noDelivery(t, deliveries, b.quiet)
	first.Ack(false)
	if d := receive(t, deliveries); d.MessageId != "3" {
		t.Errorf("after an ack got %q, want 3", d.MessageId)
	}
	noDelivery(t, deliveries, b.quiet)
}

func requeueComesFirst(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"})
	deliveries := consume(t, ch, name, "tag", 1)
	d := receive(t, deliveries)
	if d.MessageId != "a" || d.Redelivered {
		t.Fatalf("first delivery %q redelivered %v, want a, not redelivered", d.MessageId, d.Redelivered)
	}
	for _, settle := range []struct {
		name string
		do   func(d amqp.Delivery) error
	}{
		{"nack", func(d amqp.Delivery) error { return d.Nack(false, true) }}, // this delivery, requeue
		{"reject", func(d amqp.Delivery) error { return d.Reject(true) }},    // requeue
	} {
		if err := settle.do(d); err != nil {
			t.Fatal(err)
		}
		d = receive(t, deliveries)
		if d.MessageId != "a" || !d.Redelivered {
			t.Errorf("after a %s with requeue got %q redelivered %v, want a, redelivered", settle.name, d.MessageId, d.Redelivered)
		}
	}
	d.Ack(false)
	if d = receive(t, deliveries); d.MessageId != "b" || d.Redelivered {
		t.Errorf("got %q redelivered %v, want b, not redelivered", d.MessageId, d.Redelivered)
	}
	d.Ack(false)
}

func settleWithoutRequeue(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"}, amqp.Publishing{MessageId: "c"})
	deliveries := consume(t, ch, name, "tag", 1)
	receive(t, deliveries).Reject(false) // no requeue
	receive(t, deliveries).Nack(false, false)
	if d := receive(t, deliveries); d.MessageId != "c" {
		t.Errorf("got %q, want c", d.MessageId)
	}
	noDelivery(t, deliveries, b.quiet)
	// c, unacked, goes back when the channel closes; a and b are gone.
	ch.Close()
	b.waitQueue(t, conn, name, 1, 0)
}

func settleMultiple(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		publish(t, ch, name, amqp.Publishing{MessageId: id})
	}
	deliveries := consume(t, ch, name, "tag", 4)
	var ds []amqp.Delivery
	for range 4 {
		ds = append(ds, receive(t, deliveries))
	}
	ds[1].Ack(true)        // 1 and 2
	ds[3].Nack(true, true) // 3 and 4, requeued
	for _, want := range []string{"3", "4"} {
		if d := receive(t, deliveries); d.MessageId != want || !d.Redelivered {
			t.Errorf("got %q redelivered %v, want %s redelivered", d.MessageId, d.Redelivered, want)
		}
	}
	noDelivery(t, deliveries, b.quiet)
}

func returnOnClose(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"}, amqp.Publishing{MessageId: "c"})
	deliveries := consume(t, ch, name, "first", 2)
	receive(t, deliveries)
	receive(t, deliveries)
	ch.Close()

	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries = consume(t, ch2, name, "second", 3)
	for _, want := range []struct {
		id          string
		redelivered bool
	}{{"a", true}, {"b", true}, {"c", false}} {
		if d := receive(t, deliveries); d.MessageId != want.id || d.Redelivered != want.redelivered {
			t.Errorf("after the channel closed got %q redelivered %v, want %s redelivered %v", d.MessageId, d.Redelivered, want.id, want.redelivered)
		}
	}
	conn.Close()

	_, ch3 := b.dial(t)
	deliveries = consume(t, ch3, name, "third", 3)
	for _, want := range []string{"a", "b", "c"} {
		if d := receive(t, deliveries); d.MessageId != want || !d.Redelivered {
			t.Errorf("after the connection closed got %q redelivered %v, want %s redelivered", d.MessageId, d.Redelivered, want)
		}
	}
}

func unknownDeliveryTag(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	ch.Ack(42, false)
	closedWith(t, "channel", closed, amqp.PreconditionFailed)

	// An ack of a delivery already acked is one too.
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"})
	closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	d := receive(t, consume(t, ch, name, "tag", 1))
	d.Ack(false)
	d.Ack(false)
	closedWith(t, "channel", closed, amqp.PreconditionFailed)
}

func consumerTagReused(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	consume(t, ch, name, "tag", 1)
	if _, err := ch.Consume(name, "tag", false, false, false, false, nil); amqpCode(err) != amqp.NotAllowed {
		t.Errorf("second consumer tagged tag: %v, want 530", err)
	}
	closedWith(t, "connection", closed, amqp.NotAllowed)
}

func deleteCancelsConsumers(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"})
	cancels := ch.NotifyCancel(make(chan string, 1))
	deliveries := consume(t, ch, name, "tag", 1)
	d := receive(t, deliveries)

	other, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := other.QueueDelete(name, false, false, false); err != nil || n != 1 { // even if used or not empty; wait
		t.Fatalf("delete: %d, %v; want the 1 ready message deleted", n, err)
	}
	select {
	case tag := <-cancels:
		if tag != "tag" {
			t.Errorf("cancel of %q, want tag", tag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.cancel from the server")
	}
	if _, ok := <-deliveries; ok {
		t.Error("deliveries still open after the server's cancel")
	}
	// The delivery of the deleted queue may still be acked.
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	b.declare(t, ch, "after") // a round trip: the ack's error, if any, came before its answer
	select {
	case e := <-closed:
		t.Errorf("the ack of a deleted queue's delivery closed the channel: %v", e)
	default:
	}
}

func clientCancel(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"})
	deliveries := consume(t, ch, name, "tag", 1)
	d := receive(t, deliveries)
	if err := ch.Cancel("tag", false); err != nil { // wait for cancel-ok
		t.Fatal(err)
	}
	if _, ok := <-deliveries; ok {
		t.Error("deliveries still open after the cancel")
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	b.waitQueue(t, conn, name, 1, 0)
	// The ack settled a: closing the channel gives nothing back.
	ch.Close()
	b.waitQueue(t, conn, name, 1, 0)
}

func purgeKeepsUnacked(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "a"}, amqp.Publishing{MessageId: "b"})
	deliveries := consume(t, ch, name, "tag", 1)
	d := receive(t, deliveries)
	if n, err := ch.QueuePurge(name, false); err != nil || n != 1 { // wait
		t.Fatalf("purge: %d, %v; want the 1 ready message", n, err)
	}
	d.Nack(false, true) // requeue
	if d := receive(t, deliveries); d.MessageId != "a" || !d.Redelivered {
		t.Errorf("got %q redelivered %v, want a, redelivered", d.MessageId, d.Redelivered)
	}
	noDelivery(t, deliveries, b.quiet)
}

func redeclareOtherArgs(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.queue(t, "q")
	if b.onRabbitMQ() {
		if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil { // durable, not auto-delete, not exclusive, wait
			t.Fatal(err)
		}
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); amqpCode(err) != amqp.PreconditionFailed {
		t.Errorf("declare with other arguments: %v, want 406", err)
	}
	e := closedWith(t, "channel", closed, amqp.PreconditionFailed)
	// The end of the text differs: RabbitMQ 3 says "received none but
	// current is the value 'quorum' of type 'longstr'", as the tests of the
	// programs make the fake say, RabbitMQ 4 "received 'classic' but
	// current is 'quorum'".
	want := fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '%s' in vhost '%s': received ", name, b.vhost)
	if !strings.HasPrefix(e.Reason, want) {
		t.Errorf("reason %q, want it to start with %q", e.Reason, want)
	}
}

func messageTooLarge(t *testing.T, b *broker) {
	limit := 10 // the fake's, as its configuration says
	if b.onRabbitMQ() {
		limit = b.maxMessageSize(t)
	}
	_, ch := b.dial(t) // after the setting, which RabbitMQ 3 reads when a channel opens
	name := b.declare(t, ch, "q")
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	body := bytes.Repeat([]byte("x"), limit+2)
	if err := ch.PublishWithContext(t.Context(), "", name, false, false, amqp.Publishing{Body: body}); err != nil { // not mandatory, not immediate
		t.Fatal(err)
	}
	e := closedWith(t, "channel", closed, amqp.PreconditionFailed)
	if want := fmt.Sprintf("PRECONDITION_FAILED - message size %d is larger than configured max size %d", limit+2, limit); e.Reason != want {
		t.Errorf("reason %q, want %q", e.Reason, want)
	}
}

func foreignUserID(t *testing.T, b *broker) {
	_, ch := b.dial(t)
	name := b.declare(t, ch, "q")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "own", UserId: b.user})
	if d := receive(t, consume(t, ch, name, "tag", 1)); d.UserId != b.user {
		t.Errorf("delivered with user-id %q, want %q", d.UserId, b.user)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.PublishWithContext(t.Context(), "", name, false, false, amqp.Publishing{MessageId: "foreign", UserId: "amqptest-other"}); err != nil { // not mandatory, not immediate
		t.Fatal(err)
	}
	e := closedWith(t, "channel", closed, amqp.PreconditionFailed)
	if want := fmt.Sprintf("PRECONDITION_FAILED - user_id property set to 'amqptest-other' but authenticated user was '%s'", b.user); e.Reason != want {
		t.Errorf("reason %q, want %q", e.Reason, want)
	}
}

func alarmBlocksPublishers(t *testing.T, b *broker) {
	pubConn, pub := b.dial(t)
	consConn, cons := b.dial(t)
	name := b.declare(t, cons, "q")
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, name, amqp.Publishing{MessageId: "before"})
	pubBlocks := pubConn.NotifyBlocked(make(chan amqp.Blocking, 2))
	consBlocks := consConn.NotifyBlocked(make(chan amqp.Blocking, 2))

	clear := b.alarm(t)
	ids := []string{"blocking", "held"}
	var sent []*amqp.DeferredConfirmation
	for _, id := range ids {
		dc, err := pub.PublishWithDeferredConfirmWithContext(t.Context(), "", name, true, false, amqp.Publishing{MessageId: id}) // mandatory, not immediate
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, dc)
		if id == "blocking" {
			// It blocks the connection; without body, it is taken whole
			// (see alarmBlocksAtFirstPublish).
			waitBlocking(t, pubBlocks, true)
		}
	}
	select {
	case <-sent[1].Done():
		t.Fatal("a publish sent on a blocked connection confirmed under the alarm")
	case <-time.After(b.quiet):
	}
	// A connection that only consumes goes on.
	deliveries := consume(t, cons, name, "tag", 1)
	if d := receive(t, deliveries); d.MessageId != "before" {
		t.Errorf("got %q, want before", d.MessageId)
	} else {
		d.Ack(false)
	}
	b.declare(t, cons, "other")

	clear()
	waitBlocking(t, pubBlocks, false)
	for i, dc := range sent {
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Errorf("confirm of %s after the alarm: %v, %v", ids[i], ok, err)
		}
	}
	for _, want := range ids {
		if d := receive(t, deliveries); d.MessageId != want {
			t.Errorf("got %q, want %s", d.MessageId, want)
		} else {
			d.Ack(false)
		}
	}
	select {
	case b := <-consBlocks:
		t.Errorf("the consuming connection got %+v, want nothing", b)
	default:
	}
}

// alarmBlocksAtFirstPublish: under an alarm, RabbitMQ blocks a connection
// when it reads the first content frame of a publish on it, the header,
// and reads nothing more from it. A publish without body is whole by
// then: it is taken and confirmed. The body of another waits for the
// alarm to clear, and so does its confirm. A connection that published
// before the alarm gets no connection.blocked until it publishes again.
func alarmBlocksAtFirstPublish(t *testing.T, b *broker) {
	conn, ch := b.dial(t)
	bodyConn, bodyCh := b.dial(t)
	name := b.declare(t, ch, "q")
	for _, c := range []*amqp.Channel{ch, bodyCh} {
		if err := c.Confirm(false); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, ch, name, amqp.Publishing{MessageId: "before"})
	publish(t, bodyCh, name, amqp.Publishing{MessageId: "before-body", Body: []byte("body")})
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 2))
	bodyBlocks := bodyConn.NotifyBlocked(make(chan amqp.Blocking, 2))

	clear := b.alarm(t)
	select {
	case bl := <-blocks:
		t.Fatalf("a connection that published before the alarm got %+v before it published again", bl)
	case bl := <-bodyBlocks:
		t.Fatalf("a connection that published before the alarm got %+v before it published again", bl)
	case <-time.After(5 * b.quiet): // long enough for the alarm to reach the connections
	}

	first, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", name, true, false, amqp.Publishing{MessageId: "first"}) // mandatory, not immediate
	if err != nil {
		t.Fatal(err)
	}
	waitBlocking(t, blocks, true)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if ok, err := first.WaitContext(ctx); !ok || err != nil {
		t.Errorf("the publish without body that blocked the connection: acked %v, %v; want taken and acked", ok, err)
	}

	withBody, err := bodyCh.PublishWithDeferredConfirmWithContext(t.Context(), "", name, true, false, amqp.Publishing{MessageId: "with-body", Body: []byte("body")}) // mandatory, not immediate
	if err != nil {
		t.Fatal(err)
	}
	waitBlocking(t, bodyBlocks, true)
	select {
	case <-withBody.Done():
		t.Fatal("the publish whose header blocked the connection confirmed before its body could be read")
	case <-time.After(b.quiet):
	}

	clear()
	waitBlocking(t, blocks, false)
	waitBlocking(t, bodyBlocks, false)
	if ok, err := withBody.WaitContext(t.Context()); !ok || err != nil {
		t.Errorf("the publish with a body after the alarm: acked %v, %v; want acked", ok, err)
	}
	b.waitQueue(t, conn, name, 4, 0) // before, before-body, first, with-body
}

// waitBlocking waits up to 10 s for a connection.blocked (active) or
// connection.unblocked on blocks.
func waitBlocking(t *testing.T, blocks <-chan amqp.Blocking, active bool) {
	t.Helper()
	select {
	case b := <-blocks:
		if b.Active != active {
			t.Fatalf("got %+v, want active %v", b, active)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no connection.blocked or unblocked, want active %v", active)
	}
}
