# The systemd sandbox of panther-exporter, as a function of what is switched
# on; nixos/module.nix calls it with its options, and hardening.nix with the
# defaults for the plain unit nixos/panther-exporter.service, which spells
# them out by hand. A Go test (nixos/nixos_test.go, TestHardeningSame)
# evaluates hardening.nix with nix-instantiate and checks that the plain
# unit has exactly the same settings, so change both together.
#
# It follows nixpkgs' exporters.nix (nixos/modules/services/monitoring/
# prometheus/exporters.nix) and adds what nixpkgs leaves out: a system call
# filter and a narrow capability set.
#
# No lib, so that `nix-instantiate --eval --strict --json` can read it on
# machines without nixpkgs: `--arg btrfsSubvolumes true --arg diskHealth
# true sandbox.nix` gives any combination, hardening.nix the defaults.
#
# Privileges follow what is switched on (see README.md, "Deploying on
# NixOS", for the systemd-analyze exposure of each combination):
# - btrfsSubvolumes: Btrfs subvolume and snapshot metrics need
#   CAP_SYS_ADMIN (BTRFS_IOC_TREE_SEARCH_V2). Without it the btrfs collector
#   still exports everything else and says so in
#   panther_btrfs_subvolume_scan_success 0.
# - diskHealth: the diskhealth collector runs smartctl, which inherits the
#   service's ambient capabilities: CAP_SYS_RAWIO for ATA pass-through
#   (SG_IO with ATA_16 commands), CAP_SYS_ADMIN for NVMe admin commands
#   (the kernel's nvme_cmd_allowed() lets unprivileged callers send only
#   Identify, not Get Log Page) and the device nodes themselves: no
#   PrivateDevices (it would also drop CAP_SYS_RAWIO), DeviceAllow of the
#   SCSI/SATA disks (block-sd) and NVMe namespaces (block-blkext), read only.
{ btrfsSubvolumes ? false, diskHealth ? false }:
let
  caps = [ "CAP_DAC_READ_SEARCH" ]
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
  # Not ProtectClock: it installs a seccomp filter that denies adjtimex(2)
  # outright, and the timex collector's read-only adjtimex (modes 0) is
  # the only way to ask the kernel whether the clock is synchronised. A
  # filter cannot tell a read from a write (the modes are behind a
  # pointer); the kernel can: without CAP_SYS_TIME, which no setting below
  # grants, it refuses every change with EPERM. So the clock stays as
  # protected: SystemCallFilter allows adjtimex alone (not settimeofday,
  # clock_settime, clock_adjtime), /dev/rtc is hidden (PrivateDevices or
  # DevicePolicy=closed), CAP_SYS_TIME and CAP_WAKE_ALARM are outside the
  # bounding set. e2e/nixos_sandbox_test.go runs the exporter under this
  # filter and checks that adjtimex reads and clock_settime is refused.
  ProtectClock = false;
  ProtectControlGroups = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  ProtectKernelTunables = true;
  # No ProtectProc=invisible (nixpkgs does not set it either): the system
  # and btrfs collectors read /proc/1/mountinfo, the host's mount table, and
  # "invisible" hides PID 1 from the unprivileged dynamic user.
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
  # - CAP_DAC_READ_SEARCH, always: read-only access past file modes, for
  #   /var/lib/btrfs/scrub.status.UUID (btrfs-progs writes it 0600 root,
  #   checked with btrfs-progs 6.2), for opening Btrfs mount points below
  #   directories other users own, for passing the 0700 /run/user/UID
  #   directories to rootless Podman sockets, and (disk health) for opening
  #   the root-only device nodes. It grants no write access (connecting to a
  #   socket still needs its group).
  # - CAP_SYS_ADMIN, with btrfsSubvolumes or diskHealth: the btrfs
  #   collector's BTRFS_IOC_TREE_SEARCH ioctl, which lists subvolumes and
  #   snapshots (fs/btrfs/ioctl.c allows it only with CAP_SYS_ADMIN), and
  #   NVMe's Get Log Page for smartctl.
  # - CAP_SYS_RAWIO, with diskHealth: smartctl's ATA pass-through (SG_IO).
  # They are in the ambient set because DynamicUser runs the service as an
  # unprivileged user, which would otherwise drop them at exec.
  # TestServiceCapabilities (e2e/nixos_caps_test.go) checks on a real Btrfs
  # that everything works with these and that something breaks without
  # each one.
  CapabilityBoundingSet = caps;
  AmbientCapabilities = caps;
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
  SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" "adjtimex" ];
  SystemCallErrorNumber = "EPERM";
  UMask = "0077";
} // (if diskHealth then {
  # smartctl opens /dev/sdX and /dev/nvmeXnY read-only; DevicePolicy=closed
  # keeps every other device out.
  DeviceAllow = [ "block-sd r" "block-blkext r" ];
} else { })
