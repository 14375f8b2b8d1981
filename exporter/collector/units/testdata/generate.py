#!/usr/bin/env python3
"""Writes testdata/nixos: the cgroup v2 tree (sys/fs/cgroup) of a NixOS 24.05
host on kernel 6.6 with systemd 255, in the layout systemd keeps (slices,
services, scopes, a delegated user@.service, machine.slice libpod scopes), and
systemctl-show.txt: what `systemctl show -p Id,MemoryCurrent,CPUUsageNSec,
IOReadBytes,IOWriteBytes,TasksCurrent UNIT...` prints for the same units.

The development machines have hybrid cgroups, so no v2 tree can be read here:
the tree is written file by file in the kernel's formats, with the files a
6.6 kernel creates. Run from this directory; it replaces testdata/nixos."""
import os, shutil

ROOT = "nixos/sys/fs/cgroup"
NOT_SET = "[not set]"

def w(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

def psi(some, full, avg=(0.0, 0.0, 0.0)):
    a = "avg10=%.2f avg60=%.2f avg300=%.2f" % avg
    return "some %s total=%d\nfull %s total=%d\n" % (a, some, a, full)

# name: (memory.current, peak, max or None, swap, usage_usec, user_usec,
#        [(dev, rbytes, wbytes)], pids, oom_kill, psi (cpu, mem, io) some totals)
def unit(d, ctl, mem=0, peak=0, mmax=None, swap=0, usec=0, io=(), pids=1,
         oom=0, psi_some=(0, 0, 0), procs="", show=None, events_extra=""):
    """Writes the files of one unit cgroup at d, given the controllers its
    parent enabled (ctl); returns the systemctl show block."""
    w(f"{d}/cgroup.procs", procs)
    w(f"{d}/cgroup.controllers", "" if ctl is None else " ".join(ctl) + "\n")
    w(f"{d}/cgroup.subtree_control", "\n")
    w(f"{d}/cgroup.type", "domain\n")
    w(f"{d}/cgroup.events", "populated %d\nfrozen 0\n" % (1 if pids else 0))
    w(f"{d}/cgroup.pressure", "1\n")
    user = usec * 7 // 10
    w(f"{d}/cpu.stat", "usage_usec %d\nuser_usec %d\nsystem_usec %d\ncore_sched.force_idle_usec 0\n"
      "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n" % (usec, user, usec - user))
    for r, some in zip(("cpu", "memory", "io"), psi_some):
        w(f"{d}/{r}.pressure", psi(some, some // 3))
    if "cpu" in ctl:
        w(f"{d}/cpu.weight", "100\n")
        w(f"{d}/cpu.max", "max 100000\n")
    if "memory" in ctl:
        w(f"{d}/memory.current", "%d\n" % mem)
        w(f"{d}/memory.peak", "%d\n" % peak)
        w(f"{d}/memory.max", ("max" if mmax is None else str(mmax)) + "\n")
        w(f"{d}/memory.high", "max\n")
        w(f"{d}/memory.min", "0\n")
        w(f"{d}/memory.low", "0\n")
        w(f"{d}/memory.swap.current", "%d\n" % swap)
        w(f"{d}/memory.swap.max", "max\n")
        w(f"{d}/memory.events", "low 0\nhigh 0\nmax %d\noom %d\noom_kill %d\noom_group_kill 0\n"
          % (oom * 3, oom, oom) + events_extra)
        w(f"{d}/memory.events.local", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")
        w(f"{d}/memory.stat", "anon %d\nfile %d\nkernel %d\nsock 0\nshmem 0\n" % (mem // 2, mem // 3, mem - mem // 2 - mem // 3))
    if "io" in ctl:
        w(f"{d}/io.stat", "".join("%s rbytes=%d wbytes=%d rios=%d wios=%d dbytes=0 dios=0\n"
                                   % (dev, rb, wb, rb // 4096, wb // 4096) for dev, rb, wb in io))
        w(f"{d}/io.weight", "default 100\n")
        w(f"{d}/io.max", "")
    if "pids" in ctl:
        w(f"{d}/pids.current", "%d\n" % pids)
        w(f"{d}/pids.max", "max\n")
        w(f"{d}/pids.peak", "%d\n" % (pids + 2))
    name = os.path.basename(d)
    rb = sum(x[1] for x in io)
    wb = sum(x[2] for x in io)
    return "\n".join([
        "Id=" + name,
        "MemoryCurrent=" + (str(mem) if "memory" in ctl else NOT_SET),
        "CPUUsageNSec=" + str(usec * 1000),
        "TasksCurrent=" + (str(pids) if "pids" in ctl else NOT_SET),
        "IOReadBytes=" + (str(rb) if "io" in ctl else NOT_SET),
        "IOWriteBytes=" + (str(wb) if "io" in ctl else NOT_SET),
    ]) + "\n"

def slice_(d, ctl, sub, **kw):
    block = unit(d, ctl, **kw)
    w(f"{d}/cgroup.subtree_control", " ".join(sub) + "\n")
    return block

ALL = ("cpu", "io", "memory", "pids")
NVME, DM = "259:0", "254:0"
MiB = 1 << 20

shutil.rmtree("nixos", ignore_errors=True)
blocks = []
# The root cgroup: no memory.current and friends, only the pressure files.
w(f"{ROOT}/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
w(f"{ROOT}/cgroup.subtree_control", "cpu io memory pids\n")
w(f"{ROOT}/cgroup.procs", "2\n3\n")
w(f"{ROOT}/cgroup.max.depth", "max\n")
for r, t in (("cpu", 912345678), ("memory", 4567890), ("io", 23456789)):
    w(f"{ROOT}/{r}.pressure", psi(t, t // 2) if r != "cpu" else psi(t, 0))
w(f"{ROOT}/cpu.stat", "usage_usec 9123456789\nuser_usec 6123456789\nsystem_usec 3000000000\n")
w(f"{ROOT}/memory.stat", "anon 1073741824\nfile 2147483648\n")

blocks.append(unit(f"{ROOT}/init.scope", ALL, mem=14*MiB, peak=31*MiB, usec=48213377, io=[(NVME, 312459264, 4096)],
                   pids=1, psi_some=(1204, 0, 52311), procs="1\n"))
S = f"{ROOT}/system.slice"
slice_(S, ALL, ALL, mem=1987*MiB + 4096*13, peak=3012*MiB, usec=5123456789,
                     io=[(NVME, 3987654656, 12876544000), (DM, 1024*4096, 8192)], pids=187,
                     oom=1, psi_some=(9876543, 123456, 3456789))
svc = {
    "nix-daemon.service": dict(mem=412*MiB+8192, peak=1890*MiB, usec=912345678, io=[(NVME, 1234567168, 9876541440), (DM, 4096, 0)], pids=3, psi_some=(345678, 12345, 2345678)),
    "sshd.service": dict(mem=5*MiB+12288, peak=22*MiB, usec=1234567, io=[(NVME, 8843264, 0)], pids=1),
    "systemd-journald.service": dict(mem=96*MiB, peak=128*MiB, usec=45678901, io=[(NVME, 41943040, 987654144)], pids=1, psi_some=(2345, 12, 45678)),
    "systemd-udevd.service": dict(mem=11*MiB, peak=74*MiB, usec=3456789, io=[(NVME, 56623104, 0)], pids=1),
    "systemd-logind.service": dict(mem=3*MiB, peak=4*MiB, usec=456789, io=[(NVME, 1048576, 0)], pids=1),
    "systemd-timesyncd.service": dict(mem=2*MiB, peak=3*MiB, usec=234567, io=[(NVME, 524288, 0)], pids=2),
    "systemd-oomd.service": dict(mem=2*MiB+4096, peak=3*MiB, usec=4567890, io=[(NVME, 655360, 0)], pids=1),
    "dbus.service": dict(mem=4*MiB, peak=6*MiB, usec=2345678, io=[(NVME, 2097152, 0)], pids=1),
    "nscd.service": dict(mem=6*MiB, peak=9*MiB, usec=3456123, io=[(NVME, 1572864, 0)], pids=11),
    "dhcpcd.service": dict(mem=2*MiB, peak=5*MiB, usec=567890, io=[(NVME, 786432, 4096)], pids=2),
    "postgresql.service": dict(mem=1073741824-32*MiB, peak=1073741824-4096, mmax=1073741824, swap=64*MiB, usec=345678901,
                               io=[(NVME, 2147483648, 1073741824), (DM, 8192, 0)], pids=14, oom=1, psi_some=(456789, 345678, 987654)),
    "nginx.service": dict(mem=24*MiB, peak=40*MiB, usec=23456789, io=[(NVME, 12582912, 0)], pids=3),
    "podman.service": dict(mem=38*MiB, peak=96*MiB, usec=12345678, io=[(NVME, 73400320, 1048576)], pids=12),
    "panther-exporter.service": dict(mem=17*MiB, peak=21*MiB, mmax=256*MiB, usec=56789012, io=[(NVME, 3145728, 0)], pids=7),
    # Stopped since boot (a oneshot): an empty io.stat and no tasks.
    "nix-gc.service": dict(mem=0, peak=812*MiB, usec=78901234, io=[], pids=0),
}
for n, kw in svc.items():
    blocks.append(unit(f"{S}/{n}", ALL, **kw))
G = f"{S}/system-getty.slice"
blocks.append(slice_(G, ALL, ALL, mem=1*MiB, peak=1*MiB, usec=34567, io=[(NVME, 307200, 0)], pids=1))
blocks.append(unit(f"{G}/getty@tty1.service", ALL, mem=1*MiB, peak=1*MiB, usec=34567, io=[(NVME, 307200, 0)], pids=1))
# A slice that enables only memory and pids for its children: no io.stat there.
F = S + "/system-systemd\\x2dfsck.slice"
blocks.append(slice_(F, ALL, ("memory", "pids"), mem=0, peak=2*MiB, usec=123456, io=[(NVME, 1228800, 0)], pids=0))
blocks.append(unit(F + "/systemd-fsck@dev-disk-by\\x2duuid-5C1A\\x2d2B3F.service", ("memory", "pids"),
                   mem=0, peak=2*MiB, usec=123456, pids=0))
# A scope systemd-run made.
blocks.append(unit(f"{S}/run-r3c1f4b0e9a2d4c7b8e5f6a1d2c3b4e5f.scope", ALL, mem=3*MiB, peak=3*MiB, usec=12345, io=[], pids=2))

U = f"{ROOT}/user.slice"
unit(U, ALL, mem=612*MiB, peak=900*MiB, usec=234567890, io=[(NVME, 456789012, 123456789)], pids=60)
w(f"{U}/cgroup.subtree_control", "cpu io memory pids\n")
blocks.append(slice_(f"{U}/user-1000.slice", ALL, ALL, mem=600*MiB, peak=880*MiB, usec=230000000,
                     io=[(NVME, 450000000, 120000000)], pids=55, psi_some=(34567, 2345, 123456)))
unit(f"{U}/user-1000.slice/user@1000.service", ALL, mem=520*MiB, peak=800*MiB, usec=200000000, io=[(NVME, 400000000, 100000000)], pids=50)
unit(f"{U}/user-1000.slice/user@1000.service/app.slice", ALL, mem=500*MiB, usec=190000000, io=[(NVME, 390000000, 99000000)], pids=45)
unit(f"{U}/user-1000.slice/session-3.scope", ALL, mem=80*MiB, peak=90*MiB, usec=30000000, io=[(NVME, 50000000, 20000000)], pids=5)
blocks.append(slice_(f"{U}/user-1001.slice", ALL, ALL, mem=12*MiB, peak=14*MiB, usec=4567890, io=[(NVME, 6789012, 3456789)], pids=5))

M = f"{ROOT}/machine.slice"
slice_(M, ALL, ALL, mem=300*MiB, peak=310*MiB, usec=98765432, io=[(NVME, 98765432, 1234567)], pids=20)
cid = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"
unit(f"{M}/libpod-{cid}.scope", ALL, mem=290*MiB, peak=300*MiB, usec=98000000, io=[(NVME, 98000000, 1200000)], pids=18)
unit(f"{M}/libpod-{cid}.scope/container", ALL, mem=290*MiB, peak=300*MiB, usec=98000000, io=[(NVME, 98000000, 1200000)], pids=18)
unit(f"{M}/libpod-conmon-{cid}.scope", ALL, mem=1*MiB, peak=1*MiB, usec=765432, io=[], pids=1)

w("nixos/systemctl-show.txt", "\n".join(blocks))
# The host's /proc/vmstat lines around oom_kill (6.6).
w("nixos/proc/vmstat", "nr_free_pages 1234567\nnr_zone_inactive_anon 23456\npgfault 987654321\noom_kill 2\n"
  "numa_pte_updates 0\nunevictable_pgs_culled 0\nswap_ra 1234\n")
