//go:build !race

package main

// raceDetector is true in a build with -race, which slows the code it
// watches several times over: timings are not checked then.
const raceDetector = false
