<?php

declare(strict_types=1);

namespace Fpmq\Tests;

use PHPUnit\Framework\TestCase;

/**
 * worker.php and report.php, each run by the PHP CLI as php-fpm would run
 * it for one job: their log line, their status and what they write to
 * stderr (which the daemon logs). The CLI keeps the status that
 * http_response_code() sets; false means none was set, which php-fpm
 * answers as 200.
 */
final class ScriptsTest extends TestCase
{
    private string $dir;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/fpmq-scripts-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
    }

    protected function tearDown(): void
    {
        array_map('unlink', glob($this->dir . '/*') ?: []);
        rmdir($this->dir);
    }

    /**
     * @return iterable<string, array{string, array<string, mixed>, string, string, string}>
     */
    public static function jobs(): iterable
    {
        yield 'worker: a number' => ['worker', ['number' => '42'], 'Processing 42', 'false', ''];
        yield 'worker: a negative number' => ['worker', ['number' => '-7'], 'Processing -7', 'false', ''];
        $rejected = 'worker: rejected a job without an integer number';
        yield 'worker: not a number' => ['worker', ['number' => 'abc'], '', '400', $rejected];
        yield 'worker: no number' => ['worker', ['name' => 'no number'], '', '400', $rejected];
        yield 'worker: a list' => ['worker', ['number' => ['1']], '', '400', $rejected];
        yield 'worker: a number and a newline' => ['worker', ['number' => "1\n"], '', '400', $rejected];
        yield 'report: a number' => ['report', ['number' => '9'], 'Report 9', 'false', 'Report 9'];
        $rejected = 'report: rejected a job without an integer number';
        yield 'report: not a number' => ['report', ['number' => '9.5'], '', '400', $rejected];
    }

    /**
     * @dataProvider jobs
     * @param array<string, mixed> $post
     */
    public function testJob(string $script, array $post, string $line, string $status, string $stderr): void
    {
        $log = "{$this->dir}/{$script}.log";
        [$gotStatus, $gotStderr] = $this->runScript($script, $post, $log);

        self::assertSame($status, $gotStatus, 'status');
        self::assertSame($stderr === '' ? '' : $stderr . "\n", $gotStderr, 'stderr');
        self::assertSame($line === '' ? '' : $line . "\n", is_file($log) ? file_get_contents($log) : '', 'log');
    }

    /** @return iterable<string, array{string}> */
    public static function scripts(): iterable
    {
        yield 'worker' => ['worker'];
        yield 'report' => ['report'];
    }

    /** @dataProvider scripts */
    public function testALogItCannotWriteIsAFailedAttempt(string $script): void
    {
        $log = "{$this->dir}/missing/{$script}.log";
        [$status, $stderr] = $this->runScript($script, ['number' => '1'], $log);

        self::assertSame('500', $status);
        self::assertStringEndsWith("{$script}: cannot write to {$log}\n", $stderr);
    }

    /**
     * runScript runs php/$script.php with $post as $_POST and its log at $log,
     * and returns the status it set and what it wrote to stderr.
     *
     * @param array<string, mixed> $post
     * @return array{string, string}
     */
    private function runScript(string $script, array $post, string $log): array
    {
        $prepend = "{$this->dir}/prepend.php";
        file_put_contents($prepend, '<?php $_POST = ' . var_export($post, true) . ';'
            . ' register_shutdown_function(static function (): void {'
            . ' echo var_export(http_response_code(), true); });');
        $env = [
            'PATH' => (string) getenv('PATH'),
            'WORKER_LOG' => $log, 'WORKER_SLEEP' => '0',
            'REPORT_LOG' => $log, 'REPORT_SLEEP' => '0',
        ];
        $command = [
            PHP_BINARY, '-n', '-d', 'display_errors=0', '-d', 'log_errors=1', '-d', "auto_prepend_file={$prepend}",
            dirname(__DIR__) . "/{$script}.php",
        ];
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        self::assertIsResource($process);
        $out = (string) stream_get_contents($pipes[1]);
        $err = (string) stream_get_contents($pipes[2]);
        self::assertSame(0, proc_close($process), "exit status; stderr:\n{$err}");
        return [$out, $err];
    }
}
