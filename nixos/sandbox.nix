# The systemd sandbox of panther-exporter, as a function of what is switched
# on; nixos/module.nix calls it with its options, and hardening.nix with the
# defaults (the least privileged sandbox) for the plain unit
# nixos/panther-exporter.service, which spells them out by hand. A Go test
# (nixos/nixos_test.go, TestHardeningSame) evaluates hardening.nix with
# nix-instantiate and checks that the plain unit has exactly the same
# settings, so change both together.
#
# It follows nixpkgs' exporters.nix (nixos/modules/services/monitoring/
# prometheus/exporters.nix) and adds what nixpkgs leaves out: a system call
# filter, a narrow capability set, a user namespace and a hidden process
# tree where nothing that is on needs them.
#
# No lib, so that `nix-instantiate --eval --strict --json` can read it on
# machines without nixpkgs: `--arg btrfsSubvolumes true --arg diskHealth
# true sandbox.nix` gives any combination, hardening.nix the defaults.
#
# Privileges follow what is switched on (see README.md, "Deploying on
# NixOS", for the systemd-analyze exposure of each combination, which
# nixos/sandbox_test.go checks):
# - btrfsSubvolumes: Btrfs subvolume and snapshot metrics need
#   CAP_SYS_ADMIN (BTRFS_IOC_TREE_SEARCH_V2). Off, the module passes
#   --no-collector.btrfs.subvolumes and the exporter never tries the walk.
# - btrfsScrub: btrfs-progs' scrub status files
#   (/var/lib/btrfs/scrub.status.UUID, written 0600 root, checked with
#   btrfs-progs 6.2) need CAP_DAC_READ_SEARCH. Off:
#   --no-collector.btrfs.scrub-status.
# - diskHealth: the diskhealth collector runs smartctl, which inherits the
#   service's ambient capabilities: CAP_SYS_RAWIO for ATA pass-through
#   (SG_IO with ATA_16 commands), CAP_SYS_ADMIN for NVMe admin commands
#   (the kernel's nvme_cmd_allowed() lets unprivileged callers send only
#   Identify, not Get Log Page), CAP_DAC_READ_SEARCH to open the root-only
#   device nodes, and the devices themselves: no PrivateDevices (it would
#   also drop CAP_SYS_RAWIO), DeviceAllow of the SCSI/SATA disks (block-sd)
#   and NVMe namespaces (block-blkext), read only.
# - podmanRootless: the rootless Podman sockets live in /run/user/UID,
#   0700 directories of each user: CAP_DAC_READ_SEARCH to pass them (the
#   socket itself still needs its group), and /run/user visible
#   (ProtectHome=read-only, which also covers it).
# - timex: the clock metrics' read-only adjtimex(2) (see ProtectClock).
# - ipAddressAllow: null for no address filter, else the addresses (IP
#   prefixes) besides localhost that may reach the service or be reached
#   by it: the scrapers, a DogStatsD host.
{ btrfsSubvolumes ? false
, btrfsScrub ? false
, diskHealth ? false
, podmanRootless ? false
, timex ? true
, ipAddressAllow ? null
}:
let
  caps = (if btrfsScrub || diskHealth || podmanRootless then [ "CAP_DAC_READ_SEARCH" ] else [ ])
    ++ (if btrfsSubvolumes || diskHealth then [ "CAP_SYS_ADMIN" ] else [ ])
    ++ (if diskHealth then [ "CAP_SYS_RAWIO" ] else [ ]);
in
{
  DynamicUser = true;
  # The exporter needs no state; a scratch /tmp keeps it away from the host's.
  PrivateTmp = true;
  PrivateMounts = true;
  # The whole file system is read-only for the service. It writes nothing.
  ProtectSystem = "strict";
  # read-only, not nixpkgs' `true`: ProtectHome=true mounts an empty,
  # inaccessible directory over /home, /root and /run/user, so the system
  # collector's statfs(2) of a /home file system (a Btrfs subvolume on
  # pantherOS hosts) would report the sizes of that empty mount, and rootless
  # Podman sockets (/run/user/UID/podman/podman.sock) would be unreachable.
  # read-only keeps them visible and still forbids every write.
  ProtectHome = "read-only";
  PrivateDevices = !diskHealth;
  DevicePolicy = "closed";
  NoNewPrivileges = true;
  # ProtectClock only without the clock metrics: it installs a seccomp
  # filter that denies all of @clock with EPERM, adjtimex(2) included
  # whatever its modes, and the timex collector's read-only adjtimex
  # (modes 0) is the only way to ask the kernel whether the clock is
  # synchronised. A filter cannot tell a read from a write (the modes are
  # behind a pointer); the kernel can: without CAP_SYS_TIME, which no
  # setting here grants, it refuses every change with EPERM. So with timex
  # on the clock stays as protected: SystemCallFilter allows adjtimex alone
  # (not settimeofday, clock_settime, clock_adjtime), /dev/rtc is hidden
  # (PrivateDevices or DevicePolicy=closed), CAP_SYS_TIME and
  # CAP_WAKE_ALARM are outside the bounding set. e2e/nixos_sandbox_test.go
  # runs the exporter under this filter and checks that adjtimex reads and
  # a clock change is refused; and without the allowance (what
  # ProtectClock= does) that the read fails.
  ProtectClock = !timex;
  ProtectControlGroups = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  ProtectKernelTunables = true;
  # Other users' processes are hidden, PID 1 included: no collector reads
  # another process's /proc/PID (the journal collector's journalctl is the
  # service's own child, and e2e TestSandboxJournal runs it under this
  # sandbox; Podman is asked over its API). The system and btrfs
  # collectors read PID 1's mount table where they may and otherwise their
  # own namespace's, a copy of the host's (exporter/collector/hostmounts).
  # No ProcSubset=pid: /proc/stat, meminfo, net/*, pressure/* are the data.
  ProtectProc = "invisible";
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  RemoveIPC = true;
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  # AF_INET/AF_INET6: the HTTP listener and the DogStatsD client (UDP).
  # AF_UNIX: the Podman API sockets, the D-Bus system bus (boot collector)
  # and a unix:// DogStatsD address. No AF_NETLINK: nothing in the
  # exporter lists interfaces over netlink (/proc/net/dev is read instead);
  # TestSyscallsAllowed checks the socket families the exporter opens.
  RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
  # Only what the collectors that are on need:
  # - CAP_DAC_READ_SEARCH, with btrfsScrub, podmanRootless or diskHealth:
  #   read-only access past file modes, for
  #   /var/lib/btrfs/scrub.status.UUID (btrfs-progs writes it 0600 root,
  #   checked with btrfs-progs 6.2), for passing the 0700 /run/user/UID
  #   directories to rootless Podman sockets, and (disk health) for opening
  #   the root-only device nodes. It grants no write access (connecting to a
  #   socket still needs its group). Without it a mount point below a
  #   directory the service may not search (/root/x, a 0700 home) is
  #   reported with panther_filesystem_device_error 1.
  # - CAP_SYS_ADMIN, with btrfsSubvolumes or diskHealth: the btrfs
  #   collector's BTRFS_IOC_TREE_SEARCH ioctl, which lists subvolumes and
  #   snapshots (fs/btrfs/ioctl.c allows it only with CAP_SYS_ADMIN), and
  #   NVMe's Get Log Page for smartctl.
  # - CAP_SYS_RAWIO, with diskHealth: smartctl's ATA pass-through (SG_IO).
  # TestServiceCapabilities (e2e/nixos_caps_test.go) checks on a real Btrfs
  # that everything works with these and that something breaks without
  # each one.
  # No capability at all: "" (an empty list would write no line, and
  # leave the bounding set full).
  CapabilityBoundingSet = if caps == [ ] then "" else caps;
  # Without capabilities the service runs in a user namespace of its own
  # (only root and its own user mapped): it cannot gain any capability
  # over the host. Not with capabilities: they would count only inside
  # that namespace, not for the host's files and devices. Supplementary
  # groups (podman, systemd-journal, datadog) keep working: systemd sets
  # them before it makes the namespace, and the kernel checks file access
  # against the real group ids (e2e/nixos_sandbox_test.go,
  # TestSandboxMinimal, reads a group-only directory that way, and talks to
  # D-Bus from inside the namespace; TestSandboxJournal reads group-only
  # journal files through journalctl that way).
  PrivateUsers = caps == [ ];
  SystemCallArchitectures = "native";
  # @system-service is what ordinary daemons use; no @privileged (mount,
  # setuid, chroot, ...) and no @resources (setpriority, setrlimit, ...).
  # Denied calls fail with EPERM instead of killing the process: the Go
  # runtime tolerates EPERM where it probes (e.g. raising RLIMIT_NOFILE).
  # TestSyscallsAllowed (nixos/syscalls_test.go) runs the exporter under
  # strace and checks every call it makes against this filter; the e2e test
  # TestServiceSandboxFullStack (e2e/nixos_caps_test.go) does the same with
  # every collector and the DogStatsD sink working against real services,
  # as an unprivileged user with only the capabilities below.
  # adjtimex comes after the denials, which would take it out again (it
  # is in @privileged's @clock): the timex collector's read-only call.
  SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ]
    ++ (if timex then [ "adjtimex" ] else [ ]);
  SystemCallErrorNumber = "EPERM";
  UMask = "0077";
} // (if caps == [ ] then { } else {
  # In the ambient set because DynamicUser runs the service as an
  # unprivileged user, which would otherwise drop them at exec.
  AmbientCapabilities = caps;
}) // (if ipAddressAllow == null then { } else {
  # Only localhost and the given addresses may reach the service, or be
  # reached by it (the eBPF filter of the unit's cgroup).
  IPAddressDeny = "any";
  IPAddressAllow = [ "localhost" ] ++ ipAddressAllow;
}) // (if diskHealth then {
  # smartctl opens /dev/sdX and /dev/nvmeXnY read-only; DevicePolicy=closed
  # keeps every other device out.
  DeviceAllow = [ "block-sd r" "block-blkext r" ];
} else { })
