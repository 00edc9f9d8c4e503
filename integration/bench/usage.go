package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// usage is the CPU time used so far by the processes a phase involves, and
// by the whole machine.
type usage struct {
	at         time.Time
	self       time.Duration            // this process
	byID       map[string]time.Duration // containers, by ID
	engine     map[int]time.Duration    // engine processes, by PID
	engineErr  error                    // why engine is unknown
	machine    time.Duration            // every CPU of the machine, busy
	machineErr error                    // why machine is unknown
}

// snapshot reads the CPU time of this process, the engine, the machine and
// the given containers.
func (b *bench) snapshot(ctx context.Context, ids ...string) (usage, error) {
	u := usage{at: time.Now(), self: selfCPU(), byID: map[string]time.Duration{}}
	u.engine, u.engineErr = engineCPU(b.sys.containerIDs())
	u.machine, u.machineErr = machineCPU()
	for _, id := range ids {
		t, err := b.sys.containerCPU(ctx, id)
		if err != nil {
			return u, fmt.Errorf("cpu time of container %s: %w", id[:12], err)
		}
		u.byID[id] = t
	}
	return u, nil
}

// perItem returns the CPU time per item between two snapshots, in µs.
func perItem(before, after time.Duration, n int) float64 {
	return float64(after-before) / float64(time.Microsecond) / float64(n)
}

// addEngine records the engine's CPU time per item, or why it is unknown.
func (b *bench) addEngine(section, name string, before, after usage, n int) {
	const unit = "µs (info)"
	if err := errors.Join(before.engineErr, after.engineErr); err != nil {
		b.rep.missing(section, name, unit, err.Error())
		return
	}
	b.rep.add(section, name, unit, perItem(0, engineDelta(before.engine, after.engine), n))
}

// addBusy records how many cores the phase's processes kept busy on
// average (the bench itself if self, the engine if known, and the given
// containers), and how many the whole machine did. Near the core count, the
// phase was CPU-bound; a whole machine well above the phase's processes means
// that someone else's work competed with it. pass, if not empty, ends the
// figures' names.
func (b *bench) addBusy(section, pass string, before, after usage, self bool, ids ...string) {
	busy := time.Duration(0)
	if self {
		busy += after.self - before.self
	}
	if before.engineErr == nil && after.engineErr == nil {
		busy += engineDelta(before.engine, after.engine)
	}
	for _, id := range ids {
		busy += after.byID[id] - before.byID[id]
	}
	unit := fmt.Sprintf("of %d cores", runtime.NumCPU())
	elapsed := after.at.Sub(before.at).Seconds()
	b.rep.add(section, "cores busy: the measured processes"+pass, unit, busy.Seconds()/elapsed)
	name := "cores busy: whole machine" + pass
	if err := errors.Join(before.machineErr, after.machineErr); err != nil {
		b.rep.missing(section, name, unit, err.Error())
		return
	}
	b.rep.add(section, name, unit, (after.machine-before.machine).Seconds()/after.at.Sub(before.at).Seconds())
}
