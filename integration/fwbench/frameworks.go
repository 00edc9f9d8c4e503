package main

import (
	"crypto/rand"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// framework is one side-by-side comparison: a no-op job of one framework,
// run through fpmq and through the framework's own worker.
type framework struct {
	name   string // Laravel, Symfony
	worker string // the framework worker, as the report names it
	queue  string // the route: the AMQP queue, a daemon's AMQP_QUEUE
	entry  string // the pool's entry script, the daemon's SCRIPT_FILENAME
	// preload is the application's opcache.preload script, written at the
	// image's build as its deploy would write it.
	preload string
	// dispatch, run in the php-fpm container, dispatches one no-op job
	// with the application's own producer.
	dispatch []string
	// consumer is one worker process's command line, in the frameworks
	// image; the bench runs P of them in one container.
	consumer string
	// copyOf returns message i of a pre-fill, a copy of the captured
	// message the application's producer wrote.
	copyOf func(captured amqp.Publishing, i int) amqp.Publishing
}

// The test applications in the frameworks image (integration/frameworks).
const (
	laravelApp = "/srv/laravel"
	symfonyApp = "/srv/symfony"
)

var frameworks = []framework{
	{
		name:     "Laravel",
		worker:   "queue:work",
		queue:    "laravel-noop",
		entry:    laravelApp + "/fpmq.php",
		preload:  laravelApp + "/bootstrap/cache/fpmq-preload.php",
		dispatch: []string{"php", laravelApp + "/artisan.php", "noop", "laravel-noop"},
		consumer: "php " + laravelApp + "/artisan queue:work fpmq --queue=laravel-noop --tries=1",
		copyOf:   freshUUID,
	},
	{
		name:     "Symfony",
		worker:   "messenger:consume",
		queue:    "noop",
		entry:    symfonyApp + "/public/fpmq-noop.php",
		preload:  symfonyApp + "/config/preload.php",
		dispatch: []string{"php", symfonyApp + "/bin/noop.php"},
		consumer: "php " + symfonyApp + "/bin/console messenger:consume noop",
		// The PHP serializer's body has no identity of its own: every
		// copy is the same bytes, as the same message dispatched again.
		copyOf: func(p amqp.Publishing, _ int) amqp.Publishing { return p },
	},
}

// freshUUID returns a copy of a Laravel job's message with a uuid of its
// own, in the payload and as the message id, as a new dispatch would have:
// the same bytes otherwise.
func freshUUID(p amqp.Publishing, _ int) amqp.Publishing {
	id := newUUID()
	p.Body = []byte(strings.ReplaceAll(string(p.Body), p.MessageId, id))
	p.MessageId = id
	return p
}

// newUUID returns a random (version 4) UUID in its text form.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails: it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// publishing returns what a delivery was published as: its properties,
// headers and body.
func publishing(d amqp.Delivery) amqp.Publishing {
	return amqp.Publishing{
		Headers:         d.Headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		UserId:          d.UserId,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}
