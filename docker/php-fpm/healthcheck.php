<?php
// Health check of the php-fpm container: sends a FastCGI request for the
// pool's ping path and expects "pong", so it proves that the pool answers
// requests, not only that its socket exists. With an argument it checks that
// address (unix:///PATH or tcp://HOST:PORT); without, both pools where
// FPM_LISTEN and FPM_REPORTS_LISTEN say they listen (a pool on TCP through
// the loopback, which listen.allowed_clients always admits).

declare(strict_types=1);

/** Returns the address to reach a pool whose php-fpm "listen" is $listen. */
function address(string $listen): string
{
    if (str_starts_with($listen, '/')) {
        return 'unix://' . $listen;
    }
    $colon = strrpos($listen, ':');
    $port = $colon === false ? $listen : substr($listen, $colon + 1);
    $host = $colon === false ? '' : substr($listen, 0, $colon);
    $host = match ($host) {
        '', '0.0.0.0', '*' => '127.0.0.1',
        '[::]' => '[::1]',
        default => $host,
    };
    return "tcp://{$host}:{$port}";
}

function record(int $type, string $content): string
{
    return pack('CCnnCx', 1, $type, 1, strlen($content), 0) . $content;
}

function pair(string $name, string $value): string
{
    return chr(strlen($name)) . chr(strlen($value)) . $name . $value;
}

/** Asks $socket for the ping page; returns an error message, or null on "pong". */
function ping(string $socket): ?string
{
    $conn = @stream_socket_client($socket, $errno, $errstr, 3.0);
    if ($conn === false) {
        return "connect {$socket}: {$errstr}";
    }
    stream_set_timeout($conn, 3);
    $params = pair('SCRIPT_NAME', '/ping') . pair('SCRIPT_FILENAME', '/ping')
        . pair('REQUEST_METHOD', 'GET') . pair('QUERY_STRING', '');
    fwrite($conn, record(1, pack('nCx5', 1, 0)) // BEGIN_REQUEST, responder
        . record(4, $params) . record(4, '')   // PARAMS
        . record(5, ''));                      // STDIN

    $stdout = '';
    while (!feof($conn)) {
        $header = fread($conn, 8);
        if ($header === false || strlen($header) < 8) {
            break;
        }
        $h = unpack('Cversion/Ctype/nid/nlength/Cpadding', $header);
        $body = $h['length'] + $h['padding'] > 0 ? stream_get_contents($conn, $h['length'] + $h['padding']) : '';
        if ($h['type'] === 6) { // STDOUT
            $stdout .= substr($body, 0, $h['length']);
        } elseif ($h['type'] === 3) { // END_REQUEST
            break;
        }
    }
    fclose($conn);
    return str_contains($stdout, 'pong') ? null : "no pong from {$socket}";
}

$sockets = array_slice($argv, 1);
if ($sockets === []) {
    foreach (['FPM_LISTEN' => '/run/php-fpm/commands.sock', 'FPM_REPORTS_LISTEN' => '/run/php-fpm/reports.sock'] as $name => $default) {
        $listen = getenv($name);
        $sockets[] = address($listen === false || $listen === '' ? $default : $listen);
    }
}
$failed = false;
foreach ($sockets as $socket) {
    if (($error = ping($socket)) !== null) {
        fwrite(STDERR, "healthcheck: {$error}\n");
        $failed = true;
    }
}
exit($failed ? 1 : 0);
