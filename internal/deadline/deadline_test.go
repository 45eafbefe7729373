package deadline

import (
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDeadline(t *testing.T) {
	var d Deadline
	if closed(d.Wait()) {
		t.Fatal("the zero Deadline has passed")
	}
	d.Set(time.Now().Add(-time.Second))
	if !closed(d.Wait()) {
		t.Fatal("a deadline in the past has not passed")
	}
	d.Set(time.Time{})
	if closed(d.Wait()) {
		t.Fatal("no deadline, and it has passed")
	}

	// A waiter sees a deadline set after it began to wait.
	ch := d.Wait()
	d.Set(time.Now().Add(20 * time.Millisecond))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline did not pass")
	}

	// Moved later before it fired, many times over (the timer is
	// re-armed, and a fire armed for an earlier time does nothing).
	for range 100 {
		d.Set(time.Now().Add(time.Millisecond))
		d.Set(time.Now().Add(time.Hour))
	}
	time.Sleep(20 * time.Millisecond) // what nothing should do: a fire armed for 1 ms has come by now
	ch = d.Wait()
	if closed(ch) {
		t.Fatal("a deadline an hour away has passed")
	}
	d.Set(time.Time{})
	if closed(ch) {
		t.Fatal("a removed deadline has passed")
	}
}

func TestSetAllocatesNothing(t *testing.T) {
	var d Deadline
	d.Set(time.Now().Add(time.Hour))
	if n := testing.AllocsPerRun(100, func() { d.Set(time.Now().Add(time.Hour)) }); n != 0 {
		t.Errorf("Set allocates %v times", n)
	}
}
