<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\RecordingHeaderEmitter;
use PHPUnit\Framework\TestCase;

final class HeaderEmitterTest extends TestCase
{
    public function testRecordingReplacesAndRemovesWhateverTheCase(): void
    {
        $e = new RecordingHeaderEmitter();
        self::assertNull($e->getStatus());
        $e->status(503);
        $e->header('Fpmq-Retry-In', '5');
        $e->header('X-Other', 'a');
        $e->header('fpmq-retry-in', '6');
        self::assertSame(503, $e->getStatus());
        self::assertSame(['X-Other' => 'a', 'fpmq-retry-in' => '6'], $e->getHeaders());
        $e->remove('FPMQ-RETRY-IN');
        $e->remove('Not-Set');
        self::assertSame(['X-Other' => 'a'], $e->getHeaders());
    }

    /**
     * PHP's own functions, in a PHP process of their own, since this one
     * has printed already. The CLI keeps no headers (headers_list() is
     * empty there), but it keeps the status, and it refuses headers after
     * output as php-fpm does.
     */
    public function testPhpSetsTheStatus(): void
    {
        [$code, $out] = self::php('
            $e = new Fpmq\Worker\PhpHeaderEmitter();
            $e->status(503);
            $e->header("Fpmq-Retry-In", "5");
            $e->remove("Fpmq-Fail");
            echo http_response_code();
        ');
        self::assertSame([0, '503'], [$code, $out]);
    }

    public function testPhpThrowsOnceOutputStarted(): void
    {
        [$code, $out] = self::php('
            echo "output\n";
            try {
                Fpmq\Worker\Job::fromGlobals()->fail("late");
            } catch (Fpmq\Worker\HeadersSentException $e) {
                echo $e->getMessage();
            }
        ');
        self::assertSame(0, $code);
        self::assertMatchesRegularExpression(
            '/^output\nfpmq: cannot answer the daemon: output started at .+:\d+, so PHP sent the headers already$/D',
            $out,
        );
    }

    /**
     * php runs $code in a new PHP CLI process with the library loaded and
     * returns its exit status and output.
     *
     * @return array{int, string}
     */
    private static function php(string $code): array
    {
        $autoload = dirname(__DIR__, 2) . '/autoload.php';
        $code = 'require ' . var_export($autoload, true) . ';' . $code;
        $command = [PHP_BINARY, '-d', 'display_errors=stderr', '-r', $code];
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        self::assertIsResource($process);
        $out = (string) stream_get_contents($pipes[1]);
        $err = (string) stream_get_contents($pipes[2]);
        $status = proc_close($process);
        self::assertSame('', $err, 'stderr');
        return [$status, $out];
    }
}
