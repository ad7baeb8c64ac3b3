// The open-loop latency workload (goro's workloads/src/latency.rs): Poisson
// arrivals from the same splitmix64 stream, so Go serves the very requests
// goro and Tokio serve. Usage:
//
//	go run . latency <dist> <spawn|pool> <procs> <load,load,...> <requests> <seed> [scale]
//
// (scale: a factor on every service time, the arrival rate divided by it;
// workloads/src/latency.rs Schedule::scaled)
// prints one `latency_point` line per load (the first tenth of the
// requests a warm-up). A request computes its service time as steps of the
// xorshift chain, calibrated at start. The generator is a goroutine
// locked to its thread, sleeping in nanosleep(2) (Go has no thread
// outside its scheduler that could issue requests);
// Go preempts a request asynchronously after 10 ms.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type splitMix struct{ s uint64 }

func (r *splitMix) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *splitMix) unit() float64 { return float64(r.next()>>11) / float64(uint64(1)<<53) }

func distMeanUs(d string) float64 {
	switch d {
	case "fixed", "exp":
		return 10
	case "bimodal":
		return 0.995*10 + 0.005*1000
	case "slice":
		return 0.99*50 + 0.01*20000
	}
	fmt.Fprintf(os.Stderr, "unknown distribution %s\n", d)
	os.Exit(2)
	return 0
}

func distDraw(d string, r *splitMix) float64 {
	u := r.unit()
	switch d {
	case "exp":
		return -math.Log(1-u) * 10
	case "bimodal":
		if u < 0.005 {
			return 1000
		}
		return 10
	case "slice":
		if u < 0.01 {
			return 20000
		}
		return 50
	}
	return 10
}

func schedule(d string, scale float64, procs int, load float64, n int, seed uint64) ([]uint64, []uint64) {
	rate := load * float64(procs) / (distMeanUs(d) * scale * 1e3)
	r := splitMix{seed}
	arr := make([]uint64, 0, n)
	svc := make([]uint64, 0, n)
	t := 0.0
	for i := 0; i < n; i++ {
		t += -math.Log(1-r.unit()) / rate
		arr = append(arr, uint64(t))
		svc = append(svc, uint64(distDraw(d, &r)*scale*1e3))
	}
	return arr, svc
}

//go:noinline
func chainSteps(seed, steps uint64) uint64 {
	x := seed | 1
	for i := uint64(0); i < steps; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var latSink uint64

// stepsPerUs: the xorshift chain's speed on this machine, fastest of 5.
var stepsPerUs = func() float64 {
	best := 0.0
	for i := 0; i < 5; i++ {
		t := time.Now()
		latSink += chainSteps(1, 2_000_000)
		if r := 2_000_000 / (float64(time.Since(t).Nanoseconds()) / 1e3); r > best {
			best = r
		}
	}
	return best
}()

// serve computes for about ns: steps of the chain, no runtime call.
func serve(ns uint64) {
	atomic.AddUint64(&latSink, chainSteps(ns, uint64(float64(ns)/1e3*stepsPerUs))&1)
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func latencyPoint(d string, scale float64, mode string, procs int, load float64, requests int, seed uint64) {
	arr, svc := schedule(d, scale, procs, load, requests, seed)
	n := len(arr)
	done := make([]int64, n)
	var left int64 = int64(n)
	fin := make(chan struct{})
	start := time.Now()
	finish := func(i int) {
		atomic.StoreInt64(&done[i], int64(time.Since(start)))
		if atomic.AddInt64(&left, -1) == 0 {
			close(fin)
		}
	}
	// nanosleep(2) on the generator's own thread, as goro's and Tokio's
	// generators sleep: time.Sleep's timers are coarser.
	// Timer slack 1 ns and SCHED_FIFO 1 on the generator's thread, as
	// goro's and Tokio's (workloads/src/latency.rs: precise_sleeps).
	preciseSleeps := func() {
		syscall.Syscall(syscall.SYS_PRCTL, 29 /* PR_SET_TIMERSLACK */, 1, 0)
		prio := int32(1)
		// SCHED_FIFO | SCHED_RESET_ON_FORK: threads it creates do not inherit it.
		syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, 1|0x40000000, uintptr(unsafe.Pointer(&prio)))
	}
	wait := func(a uint64) {
		t := start.Add(time.Duration(a))
		if d := time.Until(t); d > 30*time.Microsecond {
			ts := syscall.NsecToTimespec(int64(d))
			syscall.Nanosleep(&ts, nil)
		}
	}
	if mode == "pool" {
		q := make(chan int, n+1)
		for w := 0; w < procs*4; w++ {
			go func() {
				for i := range q {
					serve(svc[i])
					finish(i)
				}
			}()
		}
		go func() {
			runtime.LockOSThread()
			preciseSleeps()
			for i, a := range arr {
				wait(a)
				q <- i
			}
			close(q)
		}()
	} else {
		go func() {
			runtime.LockOSThread()
			preciseSleeps()
			for i, a := range arr {
				wait(a)
				i := i
				go func() {
					serve(svc[i])
					finish(i)
				}()
			}
		}()
	}
	if n > 0 {
		<-fin
	}
	skip := n / 10
	m := n - skip
	lat := make([]float64, 0, m)
	slow := make([]float64, 0, m)
	var last uint64
	for i := skip; i < n; i++ {
		dn := uint64(done[i])
		if dn > last {
			last = dn
		}
		l := float64(0)
		if dn > arr[i] {
			l = float64(dn - arr[i])
		}
		lat = append(lat, l)
		s := svc[i]
		if s == 0 {
			s = 1
		}
		slow = append(slow, l/float64(s))
	}
	sort.Float64s(lat)
	sort.Float64s(slow)
	var first, lastArr uint64
	if m > 0 {
		first, lastArr = arr[skip], arr[n-1]
	}
	span := func(a, b uint64) float64 {
		if b <= a {
			return 1
		}
		return float64(b - a)
	}
	fmt.Printf("latency_point %.3f %.1f %.1f %.2f %.2f %.2f %.3f %.3f %.3f\n", load,
		float64(m)/(span(first, lastArr)/1e9), float64(m)/(span(first, last)/1e9),
		quantile(lat, 0.5)/1e3, quantile(lat, 0.99)/1e3, quantile(lat, 0.999)/1e3,
		quantile(slow, 0.5), quantile(slow, 0.99), quantile(slow, 0.999))
}

// latency runs `latency <dist> <mode> <procs> <loads> <requests> <seed> [scale]`.
func latency(args []string) {
	scale := 1.0
	if len(args) == 7 {
		s, err := strconv.ParseFloat(args[6], 64)
		if err != nil || s <= 0 {
			fmt.Fprintf(os.Stderr, "bad scale %q\n", args[6])
			os.Exit(2)
		}
		scale = s
	} else if len(args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: latency <dist> <spawn|pool> <procs> <load,...> <requests> <seed> [scale]")
		os.Exit(2)
	}
	procs, _ := strconv.Atoi(args[2])
	runtime.GOMAXPROCS(procs)
	requests, _ := strconv.Atoi(args[4])
	seed, _ := strconv.ParseUint(args[5], 10, 64)
	for _, l := range strings.Split(args[3], ",") {
		load, err := strconv.ParseFloat(l, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad load %q\n", l)
			os.Exit(2)
		}
		latencyPoint(args[0], scale, args[1], procs, load, requests, seed)
		runtime.GC()
	}
}
