<?php
// Health check of the php-fpm container: sends a FastCGI request for the
// pool's ping path over its socket and expects "pong", so it proves that the
// pool answers requests, not only that the socket file exists.

declare(strict_types=1);

$socket = $argv[1] ?? 'unix:///run/php-fpm/commands.sock';
$conn = @stream_socket_client($socket, $errno, $errstr, 3.0);
if ($conn === false) {
    fwrite(STDERR, "healthcheck: connect {$socket}: {$errstr}\n");
    exit(1);
}
stream_set_timeout($conn, 3);

function record(int $type, string $content): string
{
    return pack('CCnnCx', 1, $type, 1, strlen($content), 0) . $content;
}

function pair(string $name, string $value): string
{
    return chr(strlen($name)) . chr(strlen($value)) . $name . $value;
}

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

if (!str_contains($stdout, 'pong')) {
    fwrite(STDERR, "healthcheck: no pong from {$socket}\n");
    exit(1);
}
