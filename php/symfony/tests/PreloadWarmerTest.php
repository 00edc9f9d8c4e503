<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\PreloadWarmer;
use Fpmq\Symfony\Runner;
use Fpmq\Symfony\Tests\Fixtures\TestKernel;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Filesystem\Filesystem;
use Symfony\Component\HttpKernel\CacheWarmer\CacheWarmerInterface;
use Symfony\Component\Messenger\Worker;

/**
 * PreloadWarmer: what a run loads reaches the kernel's preload list, and
 * names only classes that load.
 */
final class PreloadWarmerTest extends TestCase
{
    public function testEveryClassItNamesLoads(): void
    {
        $warmer = new PreloadWarmer();
        self::assertFalse($warmer->isOptional(), 'an optional warmer runs only in cache:warmup');
        $classes = $warmer->warmUp(sys_get_temp_dir());
        self::assertContains(Runner::class, $classes);
        foreach ($classes as $class) {
            self::assertTrue(class_exists($class) || interface_exists($class), "{$class} does not load");
        }
    }

    public function testTheKernelsWarmersReturnItsClasses(): void
    {
        $dir = sys_get_temp_dir() . '/fpmq-symfony-preload-' . bin2hex(random_bytes(4));
        $kernel = new TestKernel($dir);
        try {
            $kernel->boot();
            $warmer = $kernel->getContainer()->get('cache_warmer');
            self::assertInstanceOf(CacheWarmerInterface::class, $warmer);
            $preload = $warmer->warmUp($kernel->getCacheDir(), $kernel->getBuildDir());
            self::assertContains(Runner::class, $preload);
            self::assertContains(Worker::class, $preload);
        } finally {
            $kernel->shutdown();
            (new Filesystem())->remove($dir);
        }
    }
}
