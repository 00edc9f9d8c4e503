<?php

// Composer 2's runtime API, for the tests, which load Debian's Symfony
// packages without Composer. FrameworkBundle asks Composer\InstalledVersions
// whether optional packages are installed for production
// (ContainerBuilder::willBeAvailable) and refuses to build the container
// without it; an application installed with Composer has the class in
// vendor/composer/. Here no package is known to Composer, which Symfony
// reads as "available whenever its classes exist": what Debian installed.

declare(strict_types=1);

namespace Composer;

if (!class_exists(InstalledVersions::class, false)) {
    final class InstalledVersions
    {
        public static function isInstalled(string $packageName, bool $includeDevRequirements = true): bool
        {
            return false;
        }

        /** @return array{name: string} */
        public static function getRootPackage(): array
        {
            return ['name' => '__root__'];
        }
    }
}
