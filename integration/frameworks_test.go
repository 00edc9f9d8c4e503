//go:build integration

package integration

import (
	"context"
	"sync"
	"testing"

	"github.com/fpmq/fpmq/integration/stack"
)

// Where the framework test applications are in the php-frameworks image
// (integration/frameworks/Dockerfile), and the bridges' entry scripts.
const (
	laravelApp = "/srv/laravel"
	symfonyApp = "/srv/symfony"
)

// buildFrameworkImages builds, once per test binary, the project's images
// and the php-frameworks image on top of its php-fpm image; the php-fpm
// image of the result is the frameworks one.
var buildFrameworkImages = sync.OnceValues(func() (stack.Images, error) {
	images, err := buildImages()
	if err != nil {
		return images, err
	}
	root, err := stack.RepoRoot()
	if err != nil {
		return images, err
	}
	ref, err := stack.BuildFrameworks(context.Background(), root, "fpmq-test/", testTag(), images.PHPFPM)
	if err != nil {
		return images, err
	}
	images.PHPFPM = ref
	return images, nil
})

// newFrameworkStack starts a stack as newStack does, but whose php-fpm runs
// the php-frameworks image: the "commands" pool runs the Laravel
// application's entry script and the "reports" pool the Symfony one, as
// each test's daemon says (SCRIPT_FILENAME).
func newFrameworkStack(t *testing.T, opts stackOptions) *testStack {
	t.Helper()
	images, err := buildFrameworkImages()
	if err != nil {
		t.Fatal(err)
	}
	opts.images = &images
	return newStack(t, opts)
}
