<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\PreloadCommand;
use Fpmq\Laravel\Runner;
use Illuminate\Foundation\Application;
use Illuminate\Queue\Worker;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Console\Input\ArrayInput;
use Symfony\Component\Console\Output\BufferedOutput;

/**
 * PreloadCommand (fpmq:preload): the script it writes loads the
 * application's classes and a run's through the application's own class
 * loader, and only in php-fpm.
 */
final class PreloadCommandTest extends TestCase
{
    private string $dir;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/fpmq-laravel-preload-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
    }

    protected function tearDown(): void
    {
        array_map('unlink', glob($this->dir . '/*') ?: []);
        rmdir($this->dir);
    }

    public function testWritesAScriptOfTheRunsClasses(): void
    {
        $autoload = $this->dir . '/autoload.php';
        file_put_contents($autoload, "<?php\n");
        $script = $this->dir . '/preload.php';

        [$status, $said] = $this->runCommand(['--output' => $script, '--autoload' => $autoload]);

        self::assertSame(0, $status, $said);
        self::assertStringContainsString($script, $said);
        $text = (string) file_get_contents($script);
        self::assertStringContainsString("require_once '{$autoload}';", $text);
        foreach ([Runner::class, Worker::class, Application::class] as $class) {
            self::assertStringContainsString(var_export($class, true), $text);
        }
        self::assertStringNotContainsString('@anonymous', $text);
        self::assertStringContainsString("if (PHP_SAPI !== 'fpm-fcgi') {\n    return;\n}", $text);
        exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($script) . ' 2>&1', $lint, $code);
        self::assertSame(0, $code, implode("\n", $lint));
    }

    public function testRefusesAMissingClassLoader(): void
    {
        $script = $this->dir . '/preload.php';

        [$status, $said] = $this->runCommand(['--output' => $script, '--autoload' => $this->dir . '/none.php']);

        self::assertSame(1, $status);
        self::assertStringContainsString($this->dir . '/none.php', $said);
        self::assertFileDoesNotExist($script);
    }

    public function testLeavesOutGeneratedCode(): void
    {
        class_exists(Runner::class);
        $bridge = dirname((string) (new \ReflectionClass(Runner::class))->getFileName());

        $classes = PreloadCommand::classes([$bridge]);

        self::assertNotContains(Runner::class, $classes);
        self::assertContains(TestCase::class, $classes);
    }

    /**
     * runCommand runs the command in a test application.
     *
     * @param array<string, string> $options
     * @return array{int, string} the exit status and what the command printed
     */
    private function runCommand(array $options): array
    {
        $command = new PreloadCommand();
        $command->setLaravel(TestApplication::create());
        $output = new BufferedOutput();
        $status = $command->run(new ArrayInput($options), $output);
        return [$status, $output->fetch()];
    }
}
