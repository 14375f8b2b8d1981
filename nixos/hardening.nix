# The systemd sandbox of panther-exporter, shared by nixos/module.nix and
# (spelled out by hand) nixos/panther-exporter.service. A Go test
# (nixos/nixos_test.go, TestHardeningSame) evaluates this file with
# nix-instantiate and checks that the plain unit has exactly the same
# settings, so change both together.
#
# It follows nixpkgs' exporters.nix (nixos/modules/services/monitoring/
# prometheus/exporters.nix) and adds what nixpkgs leaves out: a system call
# filter and a narrow capability set.
#
# Plain data, no lib, so that `nix-instantiate --eval --strict --json` can
# read it on machines without nixpkgs.
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
  PrivateDevices = true;
  DevicePolicy = "closed";
  NoNewPrivileges = true;
  ProtectClock = true;
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
  # Only what the collectors need:
  # - CAP_SYS_ADMIN: the btrfs collector's BTRFS_IOC_TREE_SEARCH ioctl, which
  #   lists subvolumes and snapshots, and BTRFS_IOC_SCRUB_PROGRESS; the kernel
  #   allows both only with CAP_SYS_ADMIN (fs/btrfs/ioctl.c). Nothing else
  #   in the exporter needs it; hosts without Btrfs can drop it.
  # - CAP_DAC_READ_SEARCH: read-only access past file modes, for
  #   /var/lib/btrfs/scrub.status.UUID (btrfs-progs writes it 0600 root,
  #   checked with btrfs-progs 6.2), for opening Btrfs mount points below
  #   directories other users own, and for passing the 0700
  #   /run/user/UID directories to rootless Podman sockets. It grants no
  #   write access (connecting to a socket still needs its group).
  # Both are in the ambient set because DynamicUser runs the service as an
  # unprivileged user, which would otherwise drop them at exec.
  # TestServiceCapabilities (e2e/nixos_caps_test.go) checks on a real Btrfs
  # that everything works with these two and that something breaks without
  # either one.
  CapabilityBoundingSet = [ "CAP_SYS_ADMIN" "CAP_DAC_READ_SEARCH" ];
  AmbientCapabilities = [ "CAP_SYS_ADMIN" "CAP_DAC_READ_SEARCH" ];
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
  SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
  SystemCallErrorNumber = "EPERM";
  UMask = "0077";
}
