// The docs/workloads.md workloads on Go's runtime, printing `name value unit`
// lines like goro's benches/workloads.rs. Usage: go run . [workload ...]
// (each run of each workload should be its own process; see scripts/compare.sh).
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func spawn() {
	const n = 100000
	var counter int64
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { atomic.AddInt64(&counter, 1); wg.Done() }()
	}
	wg.Wait()
	if counter != n {
		panic("count")
	}
	fmt.Printf("spawn %.1f ns/task\n", float64(time.Since(t).Nanoseconds())/n)
}

func skynetNode(c chan int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int, 10)
	for i := 0; i < 10; i++ {
		go skynetNode(rc, num+i*(size/10), size/10)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynet() {
	t := time.Now()
	c := make(chan int, 1)
	go skynetNode(c, 0, 1000000)
	if <-c != 499999500000 {
		panic("sum")
	}
	fmt.Printf("skynet %.1f ms\n", float64(time.Since(t).Microseconds())/1e3)
}

func pingpong(name string) {
	const n = 1000000
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	t := time.Now()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	el := time.Since(t)
	close(ping)
	if v != n {
		panic("pingpong counter")
	}
	fmt.Printf("%s %.1f ns/roundtrip\n", name, float64(el.Nanoseconds())/n)
}

func prodcons() {
	const n = 10000000
	ch := make(chan uint64, 128)
	t := time.Now()
	var pw sync.WaitGroup
	for p := uint64(0); p < 4; p++ {
		pw.Add(1)
		go func(p uint64) {
			for i := p * n / 4; i < (p+1)*n/4; i++ {
				ch <- i
			}
			pw.Done()
		}(p)
	}
	sums := make(chan uint64, 4)
	for c := 0; c < 4; c++ {
		go func() {
			var s uint64
			for v := range ch {
				s += v
			}
			sums <- s
		}()
	}
	pw.Wait()
	close(ch)
	var sum uint64
	for c := 0; c < 4; c++ {
		sum += <-sums
	}
	if sum != n*(n-1)/2 {
		panic("sum")
	}
	fmt.Printf("prodcons %.1f ns/msg\n", float64(time.Since(t).Nanoseconds())/n)
}

func select4() {
	const n = 4000000
	cs := make([]chan uint64, 4)
	for i := range cs {
		cs[i] = make(chan uint64, 16)
	}
	t := time.Now()
	for _, c := range cs {
		go func(c chan uint64) {
			for i := uint64(0); i < n/4; i++ {
				c <- i
			}
		}(c)
	}
	var sum uint64
	for i := 0; i < n; i++ {
		select {
		case v := <-cs[0]:
			sum += v
		case v := <-cs[1]:
			sum += v
		case v := <-cs[2]:
			sum += v
		case v := <-cs[3]:
			sum += v
		}
	}
	if sum != 4*(n/4)*(n/4-1)/2 {
		panic("sum")
	}
	fmt.Printf("select4 %.1f ns/msg\n", float64(time.Since(t).Nanoseconds())/n)
}

func yields() {
	const tasks, yields = 1000, 1000
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			for j := 0; j < yields; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	fmt.Printf("yield %.1f ns/yield\n", float64(time.Since(t).Nanoseconds())/(tasks*yields))
}

func chain(n int, done chan struct{}) {
	if n == 0 {
		done <- struct{}{}
	} else {
		go chain(n-1, done)
	}
}

func chainedSpawn() {
	const n = 100000
	done := make(chan struct{}, 1)
	t := time.Now()
	go chain(n-1, done)
	<-done
	fmt.Printf("chained_spawn %.1f ns/task\n", float64(time.Since(t).Nanoseconds())/n)
}

func splitmix64(s *uint64) uint64 {
	*s += 0x9E3779B97F4A7C15
	z := *s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func timers() {
	const n = 100000
	state := uint64(42)
	durs := make([]time.Duration, n)
	for i := range durs {
		durs[i] = time.Duration(1+splitmix64(&state)%20) * time.Millisecond
	}
	late := make([]int64, n)
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			start := time.Now()
			time.Sleep(durs[i])
			l := time.Since(start) - durs[i]
			if l < 0 {
				l = 0
			}
			late[i] = l.Microseconds()
			wg.Done()
		}(i)
	}
	wg.Wait()
	ms := float64(time.Since(t).Microseconds()) / 1e3
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	fmt.Printf("timers %.1f ms\n", ms)
	fmt.Printf("timers_p99_lateness %d us\n", late[n*99/100])
}

func rssKiB() int64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(syscall.Getpagesize()) / 1024
}

func parkedMemory() {
	const n = 100000
	before := rssKiB()
	var ready int64
	chans := make([]chan uint64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range chans {
		chans[i] = make(chan uint64)
		go func(c chan uint64) {
			atomic.AddInt64(&ready, 1)
			<-c
			wg.Done()
		}(chans[i])
	}
	for atomic.LoadInt64(&ready) < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	after := rssKiB()
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	fmt.Printf("parked_memory %.2f KiB/task\n", float64(after-before)/n)
}

func chunk(seed uint64) uint64 {
	x := seed | 1
	for i := 0; i < 7000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var sink uint64

func computeWithBlockers(blockers int) float64 {
	runtime.GOMAXPROCS(2)
	var bw sync.WaitGroup
	for b := 0; b < blockers; b++ {
		bw.Add(1)
		go func() {
			for i := 0; i < 10; i++ {
				ts := syscall.Timespec{Nsec: 50_000_000}
				syscall.Nanosleep(&ts, nil)
			}
			bw.Done()
		}()
	}
	t := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := uint64(0); i < 100; i++ {
		wg.Add(1)
		go func(i uint64) {
			var acc uint64
			for k := uint64(0); k < 1000; k++ {
				acc += chunk(i*1000 + k)
				runtime.Gosched()
			}
			mu.Lock()
			sink += acc
			mu.Unlock()
			wg.Done()
		}(i)
	}
	wg.Wait()
	ms := float64(time.Since(t).Microseconds()) / 1e3
	bw.Wait()
	return ms
}

func syscallHandoff() {
	base := computeWithBlockers(0)
	with := computeWithBlockers(4)
	fmt.Printf("syscall_handoff %.1f ms\n", with)
	fmt.Printf("syscall_handoff_ratio %.3f x\n", with/base)
}

func hogRun(spinners int) float64 {
	runtime.GOMAXPROCS(2)
	start := make(chan time.Time, 1)
	res := make(chan float64)
	go func() {
		t0 := <-start
		for i := 0; i < 100; i++ {
			time.Sleep(time.Millisecond)
		}
		res <- float64(time.Since(t0).Microseconds()) / 1e3
	}()
	start <- time.Now()
	var wg sync.WaitGroup
	for s := 0; s < spinners; s++ {
		wg.Add(1)
		go func() {
			t := time.Now()
			for time.Since(t) < 200*time.Millisecond {
			}
			wg.Done()
		}()
	}
	ms := <-res
	wg.Wait()
	return ms
}

func hog() {
	fmt.Printf("hog_baseline %.1f ms\n", hogRun(0))
	fmt.Printf("hog %.1f ms\n", hogRun(2))
}

// hiddenBlockRun returns the p99 lateness (µs) of a goroutine's 100
// time.Sleeps of 5 ms while `blockers` goroutines each make blocking
// 300 ms Nanosleeps, as long in all as the sleeps would take undisturbed.
func hiddenBlockRun(blockers int) float64 {
	runtime.GOMAXPROCS(2)
	const naps, nap, block = 100, 5 * time.Millisecond, 300 * time.Millisecond
	blocks := int((naps*nap + block - 1) / block)
	var bw sync.WaitGroup
	for b := 0; b < blockers; b++ {
		bw.Add(1)
		go func() {
			for i := 0; i < blocks; i++ {
				ts := syscall.Timespec{Nsec: int64(block)}
				syscall.Nanosleep(&ts, nil)
			}
			bw.Done()
		}()
	}
	res := make(chan float64)
	go func() {
		late := make([]float64, naps)
		for i := range late {
			t := time.Now()
			time.Sleep(nap)
			l := time.Since(t) - nap
			if l < 0 {
				l = 0
			}
			late[i] = float64(l.Nanoseconds()) / 1e3
		}
		sort.Float64s(late)
		res <- late[min(len(late)-1, len(late)*99/100)]
	}()
	p99 := <-res
	bw.Wait()
	return p99
}

func hiddenBlock() {
	fmt.Printf("hidden_block_baseline_p99 %.1f us\n", hiddenBlockRun(0))
	fmt.Printf("hidden_block_p99 %.1f us\n", hiddenBlockRun(4))
}

// blockedPingpongRun returns the round trips per second of 1,000 ping-pong
// pairs run for 1 s, beside a goroutine in a blocking 1 s Nanosleep if
// `sleeper`.
func blockedPingpongRun(sleeper bool) float64 {
	runtime.GOMAXPROCS(1)
	var stop int32
	var trips int64
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < 1000; p++ {
		ping, pong := make(chan int), make(chan int)
		wg.Add(2)
		go func() {
			for v := range ping {
				pong <- v
			}
			wg.Done()
		}()
		go func() {
			n := 0
			for atomic.LoadInt32(&stop) == 0 {
				ping <- n
				<-pong
				n++
			}
			close(ping)
			atomic.AddInt64(&trips, int64(n))
			wg.Done()
		}()
	}
	// Started last, so it runs next and blocks from the start of the run.
	if sleeper {
		wg.Add(1)
		go func() {
			ts := syscall.Timespec{Sec: 1}
			syscall.Nanosleep(&ts, nil)
			wg.Done()
		}()
	}
	time.Sleep(time.Second)
	atomic.StoreInt32(&stop, 1)
	el := time.Since(start)
	wg.Wait()
	return float64(atomic.LoadInt64(&trips)) / el.Seconds()
}

func blockedPingpong() {
	alone := blockedPingpongRun(false)
	with := blockedPingpongRun(true)
	fmt.Printf("blocked_pingpong_alone %.0f trips/s\n", alone)
	fmt.Printf("blocked_pingpong %.0f trips/s\n", with)
	fmt.Printf("blocked_pingpong_ratio %.3f x\n", with/alone)
}

func echo() {
	const clients, msgs = 100, 10000
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetNoDelay(true)
			go func(c net.Conn) {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	addr := l.Addr().String()
	t := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			c.(*net.TCPConn).SetNoDelay(true)
			msg := make([]byte, 64)
			back := make([]byte, 64)
			for k := 0; k < msgs; k++ {
				binary.LittleEndian.PutUint64(msg, uint64(i*msgs+k))
				if _, err := c.Write(msg); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, back); err != nil {
					panic(err)
				}
				if !bytes.Equal(msg, back) {
					panic("echo mismatch")
				}
			}
			c.Close()
		}(i)
	}
	wg.Wait()
	fmt.Printf("echo %.0f msgs/s\n", float64(clients*msgs)/time.Since(t).Seconds())
}

func main() {
	all := []string{"spawn", "skynet", "pingpong", "pingpong_1p", "prodcons", "select4", "yield", "chained_spawn", "timers", "parked_memory", "syscall_handoff", "hog", "hidden_block", "blocked_pingpong", "echo"}
	names := os.Args[1:]
	if len(names) > 0 && names[0] == "latency" {
		latency(names[1:])
		return
	}
	if len(names) == 0 {
		names = all
	}
	for _, name := range names {
		switch name {
		case "spawn":
			spawn()
		case "skynet":
			skynet()
		case "pingpong":
			pingpong("pingpong")
		case "pingpong_1p":
			runtime.GOMAXPROCS(1)
			pingpong("pingpong_1p")
		case "prodcons":
			prodcons()
		case "select4":
			select4()
		case "yield":
			yields()
		case "chained_spawn":
			chainedSpawn()
		case "timers":
			timers()
		case "parked_memory":
			parkedMemory()
		case "syscall_handoff":
			syscallHandoff()
		case "hog":
			hog()
		case "hidden_block":
			hiddenBlock()
		case "blocked_pingpong":
			blockedPingpong()
		case "echo":
			echo()
		default:
			fmt.Fprintf(os.Stderr, "unknown workload %s\n", name)
			os.Exit(2)
		}
	}
}
