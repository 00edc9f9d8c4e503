<?php
// Checks where the php-fpm pools listen and who may connect over TCP, and
// prints the value of listen.allowed_clients for php-fpm.conf. Run by
// entrypoint.sh before php-fpm starts; a bad value stops the container with
// exit status 2 and a message naming the variable.
//
// FPM_LISTEN and FPM_REPORTS_LISTEN take what php-fpm's "listen" takes: an
// absolute unix socket path, a port (every address), or ADDRESS:PORT
// ([IPv6]:PORT). FPM_ALLOWED_CLIENTS lists, comma-separated, the IPv4 or
// IPv6 addresses and IPv4 networks (a.b.c.d/n, n from 20 to 32, every
// address of the block) that may connect to a pool on TCP. php-fpm itself
// only takes single addresses (php-src main/fastcgi.c,
// fcgi_set_allowed_clients: inet_pton per entry), so networks are expanded
// here. The loopback (127.0.0.1, ::1) is always added: only processes in the
// container's own network namespace use it, such as the health check.
//
// A pool on TCP with no FPM_ALLOWED_CLIENTS is an error: php-fpm would take
// connections from anyone who reaches the port. On unix sockets php-fpm
// ignores allowed_clients (the socket's owner, group and mode decide), so
// the loopback alone is printed.

declare(strict_types=1);

const MAX_ADDRESSES = 4096;

function fail(string $message): never
{
    fwrite(STDERR, "fpmq php-fpm: {$message}\n");
    exit(2);
}

/** Returns true for a TCP listen value, false for a unix socket path. */
function isTcp(string $name, string $value): bool
{
    if ($value === '') {
        fail("{$name} is empty: want an absolute unix socket path, a port, or ADDRESS:PORT");
    }
    if ($value[0] === '/') {
        return false;
    }
    $port = $value;
    if (($colon = strrpos($value, ':')) !== false) {
        $host = substr($value, 0, $colon);
        $port = substr($value, $colon + 1);
        if ($host === '' || ($host[0] === '[') !== str_ends_with($host, ']')) {
            fail("{$name}={$value}: want ADDRESS:PORT or [IPv6]:PORT");
        }
    }
    if (preg_match('/^[0-9]{1,5}$/D', $port) !== 1 || (int) $port < 1 || (int) $port > 65535) {
        fail("{$name}={$value}: want an absolute unix socket path, a port from 1 to 65535, or ADDRESS:PORT");
    }
    return true;
}

/** @return list<string> the addresses of one FPM_ALLOWED_CLIENTS entry */
function addresses(string $entry): array
{
    if (!str_contains($entry, '/')) {
        if (filter_var($entry, FILTER_VALIDATE_IP) === false) {
            fail("FPM_ALLOWED_CLIENTS: '{$entry}' is not an IPv4 or IPv6 address nor an IPv4 network a.b.c.d/n");
        }
        return [$entry];
    }
    [$ip, $bits] = explode('/', $entry, 2);
    if (filter_var($ip, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4) === false || preg_match('/^[0-9]{1,2}$/D', $bits) !== 1) {
        fail("FPM_ALLOWED_CLIENTS: '{$entry}' is not an IPv4 network a.b.c.d/n");
    }
    $bits = (int) $bits;
    if ($bits < 20 || $bits > 32) {
        fail("FPM_ALLOWED_CLIENTS: '{$entry}': the prefix length must be 20 to 32 (at most " . MAX_ADDRESSES . ' addresses)');
    }
    $size = 1 << (32 - $bits);
    $first = ip2long($ip) & ~($size - 1) & 0xFFFFFFFF;
    $out = [];
    for ($i = 0; $i < $size; $i++) {
        $out[] = long2ip($first + $i);
    }
    return $out;
}

$tcp = false;
foreach (['FPM_LISTEN', 'FPM_REPORTS_LISTEN'] as $name) {
    $value = getenv($name);
    if ($value === false) {
        fail("{$name} is not set");
    }
    $tcp = isTcp($name, $value) || $tcp;
}

$allowed = ['127.0.0.1', '::1'];
$entries = array_filter(array_map('trim', explode(',', (string) getenv('FPM_ALLOWED_CLIENTS'))), fn ($e) => $e !== '');
if ($tcp && $entries === []) {
    fail('a pool listens on TCP (FPM_LISTEN=' . getenv('FPM_LISTEN') . ', FPM_REPORTS_LISTEN=' . getenv('FPM_REPORTS_LISTEN')
        . ') but FPM_ALLOWED_CLIENTS is empty: list the daemons\' addresses or network (a.b.c.d/n), or anyone who reaches the port could run PHP');
}
foreach ($entries as $entry) {
    array_push($allowed, ...addresses($entry));
}
$allowed = array_values(array_unique($allowed));
if (count($allowed) > MAX_ADDRESSES + 2) {
    fail('FPM_ALLOWED_CLIENTS: more than ' . MAX_ADDRESSES . ' addresses in all');
}
echo implode(',', $allowed), "\n";
