<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Fpmq\Publisher;
use Illuminate\Queue\Connectors\ConnectorInterface;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Connection\AMQPSSLConnection;
use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPExceptionInterface;

/**
 * FpmqConnector makes the queue of a connection whose driver is 'fpmq' in
 * config/queue.php. The connection's keys:
 *
 *  - 'url': the broker, amqp://USER:PASSWORD@HOST:PORT/VHOST (amqps:// over
 *    TLS); or else 'host', 'port' (5672), 'user', 'password' and 'vhost'
 *    ('/'), as separate keys;
 *  - 'queue': the queue a job goes to when it names none (Laravel's
 *    'default'): each queue name is an fpmq route, a daemon's AMQP_QUEUE;
 *  - 'delay_max': the daemons' DELAY_MAX in seconds (604800, 168 h);
 *  - 'timeout': seconds that bound connecting, each read and write and each
 *    publisher confirm (10);
 *  - 'tls': PHP SSL context options for amqps:// (cafile, local_cert, ...);
 *  - 'backoff': see Runner (null: fpmq's growing delay);
 *  - 'after_commit': Laravel's own, dispatch after database transactions commit.
 *
 * Nothing connects until a job is pushed or size() is asked.
 */
final class FpmqConnector implements ConnectorInterface
{
    /**
     * connect returns the queue of the connection $config.
     *
     * @param array<string, mixed> $config the connection's entry of config/queue.php
     *
     * @throws \InvalidArgumentException when the configuration lacks the broker
     */
    public function connect(array $config): FpmqQueue
    {
        $timeout = (float) ($config['timeout'] ?? 10.0);
        $open = self::opener($config, $timeout);
        return new FpmqQueue(
            $open,
            (string) ($config['queue'] ?? 'default'),
            (int) ($config['delay_max'] ?? Publisher::DEFAULT_DELAY_MAX),
            $timeout,
            (bool) ($config['after_commit'] ?? false),
        );
    }

    /**
     * opener returns a function that opens a connection to the broker the
     * configuration names, checking the configuration now.
     *
     * @param array<string, mixed> $config
     * @return \Closure(): AbstractConnection
     *
     * @throws \InvalidArgumentException
     */
    private static function opener(array $config, float $timeout): \Closure
    {
        $url = (string) ($config['url'] ?? '');
        if ($url !== '') {
            $u = parse_url($url);
            if ($u === false || !isset($u['scheme'], $u['host']) || !in_array($u['scheme'], ['amqp', 'amqps'], true)) {
                // The URL holds a password: never repeat it.
                throw new \InvalidArgumentException(
                    'fpmq: the queue connection\'s url is not an AMQP URL (amqp://USER:PASSWORD@HOST:PORT/VHOST)'
                );
            }
            $secure = $u['scheme'] === 'amqps';
            $path = $u['path'] ?? '';
            $broker = [
                'host' => $u['host'],
                'port' => $u['port'] ?? ($secure ? 5671 : 5672),
                'user' => rawurldecode($u['user'] ?? 'guest'),
                'password' => rawurldecode($u['pass'] ?? 'guest'),
                'vhost' => ($path === '' || $path === '/') ? '/' : rawurldecode(substr($path, 1)),
            ];
        } else {
            if (($config['host'] ?? '') === '') {
                throw new \InvalidArgumentException('fpmq: the queue connection needs a url, or a host');
            }
            $secure = false;
            $broker = [
                'host' => (string) $config['host'],
                'port' => (int) ($config['port'] ?? 5672),
                'user' => (string) ($config['user'] ?? 'guest'),
                'password' => (string) ($config['password'] ?? 'guest'),
                'vhost' => (string) ($config['vhost'] ?? '/'),
            ];
        }
        /** @var array<string, mixed> $tls */
        $tls = (array) ($config['tls'] ?? []);
        return static function () use ($broker, $secure, $tls, $timeout): AbstractConnection {
            try {
                if ($secure) {
                    return new AMQPSSLConnection(
                        $broker['host'],
                        $broker['port'],
                        $broker['user'],
                        $broker['password'],
                        $broker['vhost'],
                        $tls + ['verify_peer' => true, 'verify_peer_name' => true],
                        ['connection_timeout' => $timeout, 'read_write_timeout' => $timeout],
                    );
                }
                return new AMQPStreamConnection(
                    $broker['host'],
                    $broker['port'],
                    $broker['user'],
                    $broker['password'],
                    $broker['vhost'],
                    false,       // insist
                    'AMQPLAIN',  // login method
                    null,        // login response
                    'en_US',     // locale
                    $timeout,    // connection timeout
                    $timeout,    // read and write timeout
                );
            } catch (AMQPExceptionInterface | \ErrorException $e) {
                throw new \RuntimeException(
                    "fpmq: connect to {$broker['host']}:{$broker['port']}: " . $e->getMessage(),
                    0,
                    $e,
                );
            }
        };
    }
}
