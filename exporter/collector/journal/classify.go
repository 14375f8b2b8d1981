package journal

import (
	"strings"
)

// Kernel event classes, the values of the event label.
const (
	EventOOMKill      = "oom_kill"
	EventBtrfsError   = "btrfs_error"
	EventIOError      = "io_error"
	EventSegfault     = "segfault"
	EventHungTask     = "hung_task"
	EventSoftLockup   = "soft_lockup"
	EventMachineCheck = "machine_check"
)

// Events lists every class, in the order the metrics are exported.
var Events = []string{EventOOMKill, EventBtrfsError, EventIOError, EventSegfault,
	EventHungTask, EventSoftLockup, EventMachineCheck}

// blkErrors are the names block/blk-core.c's blk_errors table gives the
// failures blk_print_req_error reports as "<name> error, dev <disk>,
// sector <n> ...". Older kernels print the same after
// "blk_update_request: ".
var blkErrors = []string{"I/O", "critical medium", "critical target", "critical nexus",
	"critical space allocation", "recoverable transport", "timeout", "critical protection"}

// Classify returns the kernel event class of one kernel log message, or ""
// when it is none of them. Each event is counted once: only the line the
// kernel prints once per event is recognised, not the lines that follow it
// (an OOM kill prints a task dump and "oom-kill:constraint=..." too; a
// machine check prints one line per bank before "Machine check events logged").
//
// The formats, from the kernel sources:
//
//	mm/oom_kill.c      "Out of memory: Killed process 1234 (x) total-vm:..."      (5.x+)
//	                   "Memory cgroup out of memory: Killed process 1234 (x) ..."
//	                   "Out of memory: Kill process 1234 (x) score 0 or sacrifice child" (before 4.19)
//	fs/btrfs/messages.c "BTRFS error (device sda1): ...", "BTRFS critical (device ...)",
//	                   "BTRFS: error (device sda1) in btrfs_commit_transaction:... errno=-5 IO failure"
//	block/blk-core.c   "I/O error, dev nvme0n1, sector 2048 op 0x0:(READ) flags 0x0 ..."
//	                   "blk_update_request: I/O error, dev sda, sector 2048" (before 5.x)
//	arch/x86/mm/fault.c "x[123]: segfault at 0 ip 0000556 sp 00007ffd error 4 in x[5563+1000]"
//	kernel/hung_task.c "INFO: task x:123 blocked for more than 120 seconds."
//	kernel/watchdog.c  "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [x:123]"
//	arch/x86/kernel/cpu/mce "mce: [Hardware Error]: Machine check events logged"
//	                   "mce: [Hardware Error]: Machine check: Processor context corrupt" (panic)
func Classify(msg string) string {
	if len(msg) < 10 {
		return ""
	}
	switch {
	case isOOMKill(msg):
		return EventOOMKill
	case strings.HasPrefix(msg, "BTRFS"):
		if isBtrfsError(msg) {
			return EventBtrfsError
		}
		return ""
	case isBlockError(msg):
		return EventIOError
	case isSegfault(msg):
		return EventSegfault
	case strings.HasPrefix(msg, "INFO: task ") && strings.Contains(msg, " blocked for more than "):
		return EventHungTask
	case strings.Contains(msg, "BUG: soft lockup - CPU#"):
		return EventSoftLockup
	case strings.Contains(msg, "[Hardware Error]: Machine check events logged"),
		strings.Contains(msg, "[Hardware Error]: Machine check: "):
		return EventMachineCheck
	}
	return ""
}

func isOOMKill(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "Memory cgroup out of memory")
	if !ok {
		rest, ok = strings.CutPrefix(msg, "Out of memory")
	}
	if !ok {
		return false
	}
	// "Out of memory (oom_kill_allocating_task): Killed process ..."
	rest = strings.TrimPrefix(rest, " (oom_kill_allocating_task)")
	return strings.HasPrefix(rest, ": Killed process ") || strings.HasPrefix(rest, ": Kill process ")
}

// isBtrfsError matches btrfs_printk at error level or worse, and
// __btrfs_handle_fs_error's "BTRFS: error (device ...)".
func isBtrfsError(msg string) bool {
	for _, p := range []string{"BTRFS error ", "BTRFS critical ", "BTRFS alert ", "BTRFS emerg ", "BTRFS: error (device "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func isBlockError(msg string) bool {
	i := strings.Index(msg, " error, dev ")
	if i < 0 || !strings.Contains(msg[i:], ", sector ") {
		return false
	}
	head := strings.TrimPrefix(msg[:i], "blk_update_request: ")
	for _, name := range blkErrors {
		if head == name {
			return true
		}
	}
	return false
}

// isSegfault matches "comm[pid]: segfault at ADDR ip ..."; comm may hold spaces.
func isSegfault(msg string) bool {
	i := strings.Index(msg, "]: segfault at ")
	if i < 0 {
		return false
	}
	j := strings.LastIndexByte(msg[:i], '[')
	if j <= 0 || j == i-1 {
		return false
	}
	for _, c := range msg[j+1 : i] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.Contains(msg[i:], " ip ")
}
