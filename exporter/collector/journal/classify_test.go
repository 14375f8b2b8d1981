package journal

import (
	"testing"
)

// Lines as real kernels print them (copied from kernel logs of 4.x to 6.x
// kernels), each with the class it must get; the near misses are lines the
// same events print around the counted one, which must not count again.
var classifyCases = []struct {
	msg, want string
}{
	// mm/oom_kill.c
	{"Out of memory: Killed process 1234 (stress-ng) total-vm:1048576kB, anon-rss:1000000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:2000kB oom_score_adj:0", EventOOMKill},
	{"Memory cgroup out of memory: Killed process 4242 (java) total-vm:8388608kB, anon-rss:2097152kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4500kB oom_score_adj:0", EventOOMKill},
	{"Out of memory: Kill process 2231 (mysqld) score 872 or sacrifice child", EventOOMKill},
	{"Out of memory (oom_kill_allocating_task): Killed process 77 (x) total-vm:1kB, anon-rss:0kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0", EventOOMKill},
	{"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/x.service,task=x,pid=1234,uid=0", ""},
	{"stress-ng invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0", ""},
	{"oom_reaper: reaped process 1234 (stress-ng), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", ""},
	// fs/btrfs
	{"BTRFS error (device sda1): bdev /dev/sda1 errs: wr 0, rd 0, flush 0, corrupt 1, gen 0", EventBtrfsError},
	{"BTRFS error (device dm-0 state EA): parent transid verify failed on logical 30425088 mirror 1 wanted 13 found 11", EventBtrfsError},
	{"BTRFS critical (device nvme0n1p2): corrupt leaf: root=2 block=30457856 slot=0, unexpected item end, have 16283 expect 16253", EventBtrfsError},
	{"BTRFS: error (device sdb1) in btrfs_commit_transaction:2418: errno=-5 IO failure (Error while writing out transaction)", EventBtrfsError},
	{"BTRFS info (device sda1): scrub: started on devid 1", ""},
	{"BTRFS warning (device sda1): checksum error at logical 1104150528 on dev /dev/sda1, physical 1104150528, root 5, inode 257, offset 0, length 4096, links 1 (path: file)", ""},
	{"BTRFS: device fsid 5f1c2b3a-0000-4000-8000-000000000001 devid 1 transid 9 /dev/loop0 scanned by mount (123)", ""},
	// block/blk-core.c
	{"I/O error, dev nvme0n1, sector 1953525120 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2", EventIOError},
	{"I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0", EventIOError},
	{"blk_update_request: I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0", EventIOError},
	{"blk_update_request: I/O error, dev sdb, sector 0", EventIOError},
	{"critical medium error, dev sdc, sector 123456 op 0x0:(READ) flags 0x0 phys_seg 8 prio class 0", EventIOError},
	{"critical target error, dev sdd, sector 64 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2", EventIOError},
	{"Buffer I/O error on dev sda1, logical block 0, async page read", ""},
	{"EXT4-fs warning (device sda1): ext4_end_bio:343: I/O error 10 writing to inode 12 starting block 3)", ""},
	{"myapp: I/O error, dev sda, sector 5", ""},
	// arch/x86/mm/fault.c
	{"nginx[2371]: segfault at 0 ip 000055d0c3a1b2c4 sp 00007ffd4b6f8e10 error 4 in nginx[55d0c3a00000+f7000] likely on CPU 1 (core 1, socket 0)", EventSegfault},
	{"Web Content[9921]: segfault at 7f1f00000000 ip 00007f1f9c2e1a4d sp 00007ffc3f8e2c40 error 6 in libxul.so[7f1f98000000+5b00000]", EventSegfault},
	{"python3[51]: segfault at x ip", ""},
	{"segfault at 0 ip 0 sp 0 error 4", ""},
	{"traps: app[123] general protection fault ip:7f0 sp:7ff error:0 in libc.so.6[7f0+195000]", ""},
	// kernel/hung_task.c
	{"INFO: task btrfs-transacti:412 blocked for more than 120 seconds.", EventHungTask},
	{"INFO: task kworker/u16:3:5123 blocked for more than 245 seconds.", EventHungTask},
	{"      Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1", ""},
	{"\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.", ""},
	// kernel/watchdog.c
	{"watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:345]", EventSoftLockup},
	{"BUG: soft lockup - CPU#3 stuck for 23s! [swapper/3:0]", EventSoftLockup},
	{"watchdog: Watchdog detected hard LOCKUP on cpu 2", ""},
	// arch/x86/kernel/cpu/mce
	{"mce: [Hardware Error]: Machine check events logged", EventMachineCheck},
	{"mce: [Hardware Error]: Machine check: Processor context corrupt", EventMachineCheck},
	{"mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 5: be00000000800400", ""},
	{"mce: [Hardware Error]: TSC 0 ADDR fef1c140 MISC 38a0000086", ""},
	// unrelated
	{"", ""},
	{"Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", ""},
}

func TestClassify(t *testing.T) {
	for _, c := range classifyCases {
		if got := Classify(c.msg); got != c.want {
			t.Errorf("Classify(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
	// Every class has at least one real line.
	seen := map[string]bool{}
	for _, c := range classifyCases {
		seen[c.want] = true
	}
	for _, ev := range Events {
		if !seen[ev] {
			t.Errorf("no case for %s", ev)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, c := range classifyCases {
		f.Add(c.msg)
	}
	known := map[string]bool{"": true}
	for _, ev := range Events {
		known[ev] = true
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := Classify(msg)
		if !known[got] {
			t.Fatalf("Classify returned unknown class %q", got)
		}
		// A class is a property of the line's start and its own words:
		// trailing text never takes it away.
		if got != "" && Classify(msg+" trailing") != got {
			t.Fatalf("appending text changed the class of a %s line", got)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	for b.Loop() {
		for _, c := range classifyCases {
			Classify(c.msg)
		}
	}
}
