<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Fpmq\Worker\Job as WorkerJob;
use Fpmq\Worker\Message;
use Fpmq\Worker\PhpHeaderEmitter;
use Fpmq\Worker\Properties;
use Fpmq\Worker\Table;
use Illuminate\Bus\Dispatcher as BusDispatcher;
use Illuminate\Console\Command;
use Illuminate\Pipeline\Pipeline;
use Illuminate\Queue\CallQueuedHandler;
use Illuminate\Queue\Events;
use Illuminate\Queue\Jobs\JobName;
use Illuminate\Queue\MaxAttemptsExceededException;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;

/**
 * PreloadCommand (`php artisan fpmq:preload`) writes the opcache.preload
 * script of the pools that run the application's jobs: it requires the
 * application's class loader and loads every class the application's
 * bootstrap declared (the console kernel's, as Runner::handle runs it for
 * each job) and the classes of a job's run, so that php-fpm links them once
 * at its start instead of in every request. Run it where the application is
 * deployed, after `config:cache`, as Symfony's cache:warmup writes its
 * preload file; run it again with every deploy, and restart php-fpm (a
 * preloaded class keeps its code until then).
 */
final class PreloadCommand extends Command
{
    /** The classes a job's run loads beyond the application's bootstrap. */
    public const RUN_CLASSES = [
        Runner::class, FpmqJob::class, Payload::class,
        WorkerJob::class, PhpHeaderEmitter::class, Message::class, Properties::class, Table::class,
        Worker::class, WorkerOptions::class, CallQueuedHandler::class, JobName::class,
        MaxAttemptsExceededException::class, BusDispatcher::class, Pipeline::class,
        Events\JobProcessing::class, Events\JobProcessed::class, Events\JobExceptionOccurred::class,
        Events\JobFailed::class, Events\JobReleasedAfterException::class,
    ];

    /** @var string */
    protected $signature = 'fpmq:preload
        {--output= : the script to write (default bootstrap/cache/fpmq-preload.php)}
        {--autoload= : the class loader the script requires (default vendor/autoload.php)}';

    /** @var string */
    protected $description = 'Write the opcache.preload script of the pools that run the application\'s jobs with fpmq';

    public function handle(): int
    {
        $output = $this->option('output') ?: $this->laravel->bootstrapPath('cache/fpmq-preload.php');
        $autoload = $this->option('autoload') ?: $this->laravel->basePath('vendor/autoload.php');
        if (!is_file($autoload)) {
            $this->error("fpmq: no class loader at {$autoload}: name it with --autoload");
            return self::FAILURE;
        }
        foreach (self::RUN_CLASSES as $class) {
            class_exists($class) || interface_exists($class);
        }
        $classes = self::classes([$this->laravel->storagePath(), $this->laravel->bootstrapPath('cache')]);
        if (file_put_contents($output, self::script(realpath($autoload) ?: $autoload, $classes)) === false) {
            $this->error("fpmq: cannot write {$output}");
            return self::FAILURE;
        }
        $this->info(sprintf('fpmq: %d classes to preload, in %s: set opcache.preload to it', count($classes), $output));
        return self::SUCCESS;
    }

    /**
     * classes returns the classes, interfaces, traits and enums of PHP code
     * declared so far, in declaration order (each after its parents), but
     * for those of files under $generated (compiled views, cached facades)
     * and anonymous classes.
     *
     * @param list<string> $generated directories of generated code
     * @return list<string>
     */
    public static function classes(array $generated): array
    {
        $classes = [];
        foreach ([...get_declared_interfaces(), ...get_declared_traits(), ...get_declared_classes()] as $name) {
            $file = (new \ReflectionClass($name))->getFileName();
            if ($file === false || str_contains($name, '@anonymous')) {
                continue;
            }
            foreach ($generated as $dir) {
                if (str_starts_with($file, rtrim($dir, '/') . '/')) {
                    continue 2;
                }
            }
            $classes[] = $name;
        }
        return $classes;
    }

    /**
     * script returns the preload script: outside php-fpm it does nothing;
     * in php-fpm it loads each class through $autoload, skipping one that
     * no longer loads (a deploy removed it) rather than failing php-fpm's
     * start.
     *
     * @param list<string> $classes
     */
    public static function script(string $autoload, array $classes): string
    {
        return "<?php\n\n"
            . "// opcache.preload of the pools that run this application's jobs with fpmq,\n"
            . "// written by `php artisan fpmq:preload`: write it again with every deploy.\n\n"
            . "if (PHP_SAPI !== 'fpm-fcgi') {\n    return;\n}\n\n"
            . 'require_once ' . var_export($autoload, true) . ";\n\n"
            . 'foreach (' . var_export($classes, true) . " as \$class) {\n"
            . "    try {\n"
            . "        class_exists(\$class); // loads an interface's or a trait's file too\n"
            . "    } catch (\\Throwable) {\n"
            . "    }\n"
            . "}\n";
    }
}
