package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Images name the images a stack runs, by reference or by ID.
type Images struct {
	RabbitMQ, PHPFPM, Daemon, Caller string
	// Console is the web console's (services/console); only Stack.Console
	// needs it.
	Console string
}

// All returns the images in a fixed order: RabbitMQ, php-fpm, daemon,
// caller, and the console if it is named.
func (i Images) All() []string {
	all := []string{i.RabbitMQ, i.PHPFPM, i.Daemon, i.Caller}
	if i.Console != "" {
		all = append(all, i.Console)
	}
	return all
}

// ComposeImages are the images `make images` builds with compose.
var ComposeImages = Images{
	RabbitMQ: "fpmq/rabbitmq:dev",
	PHPFPM:   "fpmq/php-fpm:dev",
	Daemon:   "fpmq/daemon:dev",
	Caller:   "fpmq/caller:dev",
	Console:  "fpmq/console:dev",
}

// TestImages returns the references of the images Build tags
// <prefix><name>:<tag>.
func TestImages(prefix, tag string) Images {
	ref := func(name string) string { return prefix + name + ":" + tag }
	return Images{RabbitMQ: ref("rabbitmq"), PHPFPM: ref("php-fpm"), Daemon: ref("daemon"), Caller: ref("caller")}
}

// BuildTimeout bounds Build: cold, the Go and Debian layers take minutes.
const BuildTimeout = 15 * time.Minute

// dockerfile is how one image is built from the repository.
type dockerfile struct {
	name       string // the image is <prefix><name>:<tag>
	path       string // relative to the repository's root
	target     string
	argName    string // the build argument naming the upstream image
	argDefault string // its default, as in .env.example
}

var dockerfiles = []dockerfile{
	{"rabbitmq", "docker/rabbitmq/Dockerfile", "", "RABBITMQ_IMAGE", "rabbitmq:4-management"},
	{"php-fpm", "docker/php-fpm/Dockerfile", "", "PHP_IMAGE", "php:8.4-fpm"},
	{"daemon", "docker/go/Dockerfile", "daemon", "GO_IMAGE", "golang:1.26-trixie"},
	{"caller", "docker/go/Dockerfile", "caller", "GO_IMAGE", "golang:1.26-trixie"},
	{"console", "docker/go/Dockerfile", "console", "GO_IMAGE", "golang:1.26-trixie"},
}

// Build builds the project's images from its Dockerfiles in the repository
// at root, tagged <prefix><name>:<tag>, with the upstream images that
// getenv names (RABBITMQ_IMAGE, PHP_IMAGE, GO_IMAGE: `make images` writes
// them into .env) or else those of .env.example.
func Build(ctx context.Context, root, prefix, tag string, getenv func(string) string) (Images, error) {
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return Images{}, fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()
	refs := map[string]string{}
	for _, df := range dockerfiles {
		upstream := df.argDefault
		if v := getenv(df.argName); v != "" {
			upstream = v
		}
		req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
			Context:    root,
			Dockerfile: df.path,
			Repo:       prefix + df.name,
			Tag:        tag,
			BuildArgs:  map[string]*string{df.argName: &upstream},
			KeepImage:  true,
			BuildOptionsModifier: func(o *client.ImageBuildOptions) {
				o.Target = df.target
			},
		}}
		ref, err := provider.BuildImage(ctx, req)
		if err != nil {
			return Images{}, fmt.Errorf("build %s from %s: %w", df.name, df.path, err)
		}
		refs[df.name] = ref
	}
	return Images{RabbitMQ: refs["rabbitmq"], PHPFPM: refs["php-fpm"], Daemon: refs["daemon"], Caller: refs["caller"], Console: refs["console"]}, nil
}

// FrameworksDockerfile builds the php-fpm image with Debian's Laravel and
// Symfony packages and the test applications (integration/frameworks/).
const FrameworksDockerfile = "integration/frameworks/Dockerfile"

// BuildFrameworks builds FrameworksDockerfile in the repository at root on
// top of phpFPM (the project's php-fpm image, by reference or ID), tagged
// <prefix>php-frameworks:<tag>, and returns its reference. Cold, it
// installs the frameworks with apt-get (about a minute); Docker's cache
// makes a rebuild take seconds.
func BuildFrameworks(ctx context.Context, root, prefix, tag, phpFPM string) (string, error) {
	return buildImage(ctx, root, FrameworksDockerfile, prefix+"php-frameworks", tag, map[string]*string{"BASE": &phpFPM})
}

// buildImage builds dockerfile in the repository at root with args,
// tagged repo:tag and kept, within BuildTimeout, and returns its reference.
func buildImage(ctx context.Context, root, dockerfile, repo, tag string, args map[string]*string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()
	ref, err := provider.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: root, Dockerfile: dockerfile, Repo: repo, Tag: tag, BuildArgs: args, KeepImage: true,
	}})
	if err != nil {
		return "", fmt.Errorf("build %s from %s: %w", repo, dockerfile, err)
	}
	return ref, nil
}

// Pin returns the IDs of the images refs names, so that a stack runs what
// they were at this moment even if they are built again meanwhile. It never
// pulls: an image that is not there is an error, but for the console's,
// which is left out (empty) when it was never built.
func Pin(ctx context.Context, refs Images) (Images, error) {
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return Images{}, fmt.Errorf("docker client: %w", err)
	}
	defer docker.Close()
	var errs []error
	pin := func(ref string) string {
		img, err := docker.ImageInspect(ctx, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("image %s: %w", ref, err))
		}
		return img.ID
	}
	ids := Images{RabbitMQ: pin(refs.RabbitMQ), PHPFPM: pin(refs.PHPFPM), Daemon: pin(refs.Daemon), Caller: pin(refs.Caller)}
	if refs.Console != "" {
		if img, err := docker.ImageInspect(ctx, refs.Console); err == nil {
			ids.Console = img.ID
		}
	}
	return ids, errors.Join(errs...)
}

// RepoRoot returns the repository's root: the nearest directory, from the
// working directory up, that holds compose.yaml. Tests run in their
// package's directory, `make bench` in the integration module's.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no compose.yaml in the working directory or above it: run from inside the repository")
		}
		dir = parent
	}
}
