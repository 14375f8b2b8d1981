# NixOS module of panther-exporter (host side, services.panther-exporter).
# It also imports ./monitoring.nix (server side, services.panther-monitoring)
# and ./fleet.nix (push through vmagent, services.panther-exporter.push).
#
#   imports = [ panther.nixosModules.default ];
#   services.panther-exporter = {
#     enable = true;
#     role = "workstation";   # or "server": picks the defaults below
#     openFirewall = true;
#   };
#
# The service is sandboxed like nixpkgs' Prometheus exporters
# (nixos/modules/services/monitoring/prometheus/exporters.nix) plus a system
# call filter; the settings live in ./sandbox.nix (capabilities, devices, the
# user namespace, the clock and the address filter follow btrfs.subvolumes,
# btrfs.scrubStatus, diskHealth.enable, podman.rootless, the timex collector
# and ipAddressAllow), shared with the plain
# unit ./panther-exporter.service, and each capability is explained there.
# nixos/nixos_test.go checks that every flag written below exists in the
# binary and that the plain unit carries the same hardening.
{ config, lib, pkgs, utils, ... }:

let
  inherit (lib)
    getExe hasInfix literalExpression mapAttrsToList mkEnableOption mkIf
    mkOption optional optionals types;

  cfg = config.services.panther-exporter;

  # The units collector's --collector.units.max-units (300 by default).
  unitsMax = if cfg.units.maxUnits != null then cfg.units.maxUnits else 300;

  # What a role changes by default (docs/runbooks.md#alert-policy-by-role,
  # figures in docs/benchmarks.md): a workstation runs the costly background
  # work (Podman listing and stats, the Btrfs subvolume walk, the systemd unit
  # list) and the DogStatsD flush less often, so that it wakes less on battery.
  profiles = {
    server = {
      podmanListInterval = "15s";
      podmanStatsInterval = "15s";
      btrfsSubvolumeInterval = "1m";
      bootUnitRefreshInterval = "30s";
      datadogInterval = "15s";
    };
    workstation = {
      podmanListInterval = "60s";
      podmanStatsInterval = "60s";
      btrfsSubvolumeInterval = "15m";
      bootUnitRefreshInterval = "5m";
      datadogInterval = "60s";
    };
  };
  profile = profiles.${cfg.role};
  podmanEnabled = cfg.podman.enable;

  # Every collector of the binary, for the enable/disable options (the Go
  # test checks that `--collector.NAME` exists for each).
  collectorNames = [ "boot" "btrfs" "diskhealth" "hwmon" "journal" "limits" "nix" "podman" "power" "system" "textfile" "timex" "units" ];

  # A collector runs when it is named, or on by default and not turned off.
  collectorOn = name: byDefault:
    builtins.elem name cfg.enabledCollectors
    || (byDefault && !cfg.disableDefaultCollectors && !(builtins.elem name cfg.disabledCollectors));
  btrfsSubvolumes = cfg.btrfs.subvolumes && collectorOn "btrfs" true;
  btrfsScrub = cfg.btrfs.scrubStatus && collectorOn "btrfs" true;

  listen =
    if cfg.listenAddress == "" then ":${toString cfg.port}"
    else if hasInfix ":" cfg.listenAddress then "[${cfg.listenAddress}]:${toString cfg.port}"
    else "${cfg.listenAddress}:${toString cfg.port}";

  # The Datadog sink: the address given, else the Agent's socket when this
  # module runs the Agent on the DogStatsD route (./datadog.nix).
  agentSocket = cfg.datadog.agent.enable && cfg.datadog.agent.route == "dogstatsd";
  datadogAddress =
    if cfg.datadog.address != null then cfg.datadog.address
    else if agentSocket then "unix://${cfg.datadog.agent.socket}"
    else null;

  # A flag of extraFlags replaces the module's flag of the same name (the
  # binary refuses a one-value flag given twice, and --no-X is X): so
  # extraFlags = [ "--collector.btrfs.subvolume-interval=10m" ] works.
  # Repeatable flags add up instead.
  flagName = f: lib.removePrefix "no-" (lib.removePrefix "--" (builtins.head (lib.splitString "=" f)));
  repeatableFlags = [ "collector.podman.socket" "datadog.tags" ];
  extraFlagNames = map flagName cfg.extraFlags;
  kept = f: builtins.elem (flagName f) repeatableFlags || !(builtins.elem (flagName f) extraFlagNames);

  flags = builtins.filter kept moduleFlags ++ cfg.extraFlags;

  moduleFlags =
    [ "--web.listen-address=${listen}" ]
    ++ optional cfg.disableDefaultCollectors "--collector.disable-defaults"
    ++ map (c: "--collector.${c}") cfg.enabledCollectors
    ++ map (c: "--no-collector.${c}") cfg.disabledCollectors
    # No Podman on the host: no podman collector, unless asked for by name.
    ++ optional (!podmanEnabled && !(builtins.elem "podman" cfg.enabledCollectors)) "--no-collector.podman"
    ++ optionals podmanEnabled (
      mapAttrsToList (name: uri: "--collector.podman.socket=${name}=${uri}") cfg.podman.sockets
      ++ optional cfg.podman.rootless "--collector.podman.rootless"
      ++ [ "--collector.podman.list-interval=${cfg.intervals.podmanList}"
           "--collector.podman.stats-interval=${cfg.intervals.podmanStats}" ])
    ++ optional (!cfg.btrfs.subvolumes) "--no-collector.btrfs.subvolumes"
    ++ optional (!cfg.btrfs.scrubStatus) "--no-collector.btrfs.scrub-status"
    ++ [ "--collector.btrfs.subvolume-interval=${cfg.intervals.btrfsSubvolumes}"
         "--collector.boot.unit-refresh-interval=${cfg.intervals.bootUnitRefresh}" ]
    ++ optional (cfg.boot.dbusAddress != null) "--collector.boot.dbus-address=${cfg.boot.dbusAddress}"
    ++ optional (cfg.textfileDirectory != null) "--collector.textfile.directory=${cfg.textfileDirectory}"
    ++ optionals cfg.diskHealth.enable [
      "--collector.diskhealth"
      "--collector.diskhealth.smartctl=${cfg.diskHealth.smartctl}"
      "--collector.diskhealth.interval=${cfg.diskHealth.interval}"
    ]
    ++ optional (cfg.units.include != null) "--collector.units.include=${cfg.units.include}"
    ++ optional (cfg.units.exclude != null) "--collector.units.exclude=${cfg.units.exclude}"
    ++ optional (cfg.units.maxUnits != null) "--collector.units.max-units=${toString cfg.units.maxUnits}"
    ++ optional (cfg.nixGc.stateFile != defaultGCState) "--collector.nix.gc-state-file=${cfg.nixGc.stateFile}"
    ++ optionals cfg.journal.enable [
      "--collector.journal"
      "--collector.journal.journalctl=${cfg.journal.journalctl}"
      "--collector.journal.state-file=/var/lib/panther-exporter/journal.state"
      "--collector.journal.priority=${cfg.journal.priority}"
      "--collector.journal.max-units=${toString cfg.journal.maxUnits}"
    ]
    ++ optionals (datadogAddress != null) (
      [ "--datadog.address=${datadogAddress}"
        "--datadog.interval=${cfg.datadog.interval}"
        # The host's role as a tag on every metric, for the monitors' policy.
        "--datadog.tags=role:${cfg.role}" ]
      ++ map (t: "--datadog.tags=${t}") cfg.datadog.tags
      ++ optional (cfg.datadog.include != null) "--datadog.include=${cfg.datadog.include}"
      ++ optional (cfg.datadog.exclude != null) "--datadog.exclude=${cfg.datadog.exclude}")
    ++ optional (cfg.webConfigFile != null) "--web.config.file=${cfg.webConfigFile}";

  # The sandbox grants only what the options switch on (see sandbox.nix).
  hardening = import ./sandbox.nix {
    inherit btrfsSubvolumes btrfsScrub;
    diskHealth = cfg.diskHealth.enable;
    podmanRootless = podmanEnabled && cfg.podman.rootless;
    timex = collectorOn "timex" true;
    inherit (cfg) ipAddressAllow;
  };

  # The binary's default --collector.nix.gc-state-file.
  defaultGCState = "/var/lib/panther/nix-gc-last-run";

  # nix-collect-garbage through ./panther-nix-gc.sh, which records what the
  # run freed for the nix collector. Not writeShellApplication: its errexit
  # would end the script before it records a failed run.
  gcWrapper = pkgs.writeShellScript "panther-nix-gc" (''
    PATH=${lib.makeBinPath [ pkgs.coreutils pkgs.gnugrep ]}:$PATH
  '' + builtins.readFile ./panther-nix-gc.sh);
in
{
  imports = [ ./monitoring.nix ./datadog.nix ./logs.nix ./fleet.nix ];

  options.services.panther-exporter = {
    enable = mkEnableOption "panther-exporter, the pantherOS metrics exporter (system, Btrfs, Podman, boot, Nix)";

    role = mkOption {
      type = types.enum [ "server" "workstation" ];
      default = "server";
      example = "workstation";
      description = ''
        What the host is. A workstation (a laptop: asleep at night, off for
        weekends, on battery, roaming) gets the workstation defaults of
        {option}`intervals` and {option}`datadog.interval` (less background
        work, fewer wake-ups), and the DogStatsD tag `role:workstation`, by
        which the Datadog monitors never page for it unless data is being
        lost. Give the same role to the host in
        {option}`services.panther-monitoring.hosts` on the monitoring server:
        there it becomes the Prometheus target label that the alert routing
        uses (docs/runbooks.md, "Alert policy by role").
      '';
    };

    package = mkOption {
      type = types.package;
      # go.mod needs Go >= 1.26.8; nixpkgs' default Go may be older.
      default = pkgs.callPackage ./package.nix { buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule; };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The panther-exporter package to run.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "";
      example = "127.0.0.1";
      description = ''
        Address to listen on; empty listens on every address (IPv4 and IPv6).
        An IPv6 address is given without brackets.
      '';
    };

    port = mkOption {
      type = types.port;
      default = 9567;
      description = "Port to listen on.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open {option}`port` in the firewall for Prometheus to scrape.";
    };

    disableDefaultCollectors = mkOption {
      type = types.bool;
      default = false;
      description = "Turn off every collector not named in {option}`enabledCollectors`.";
    };

    enabledCollectors = mkOption {
      type = types.listOf (types.enum collectorNames);
      default = [ ];
      example = [ "btrfs" "podman" ];
      description = "Collectors to turn on (`--collector.NAME`).";
    };

    disabledCollectors = mkOption {
      type = types.listOf (types.enum collectorNames);
      default = [ ];
      example = [ "podman" ];
      description = "Collectors to turn off (`--no-collector.NAME`).";
    };

    intervals = {
      podmanList = mkOption {
        type = types.str;
        default = profile.podmanListInterval;
        defaultText = literalExpression ''if role == "workstation" then "60s" else "15s"'';
        description = "How often Podman's containers, pods, images and volumes are listed (events list sooner).";
      };
      podmanStats = mkOption {
        type = types.str;
        default = profile.podmanStatsInterval;
        defaultText = literalExpression ''if role == "workstation" then "60s" else "15s"'';
        description = "How often container stats are taken.";
      };
      btrfsSubvolumes = mkOption {
        type = types.str;
        default = profile.btrfsSubvolumeInterval;
        defaultText = literalExpression ''if role == "workstation" then "15m" else "1m"'';
        description = "Least time between two walks of the Btrfs subvolumes and snapshots.";
      };
      bootUnitRefresh = mkOption {
        type = types.str;
        default = profile.bootUnitRefreshInterval;
        defaultText = literalExpression ''if role == "workstation" then "5m" else "30s"'';
        description = "Least time between two reads of systemd's unit list, blame and timers.";
      };
    };

    podman = {
      enable = mkOption {
        type = types.bool;
        default = (config.virtualisation.podman.enable or false) || cfg.podman.sockets != { } || cfg.podman.rootless;
        defaultText = literalExpression "config.virtualisation.podman.enable || podman.sockets != { } || podman.rootless";
        description = ''
          Run the podman collector. Off on a host without Podman
          (virtualisation.podman.enable unset and no socket configured):
          no Podman is not Podman down.
        '';
      };
      sockets = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = literalExpression ''{ system = "unix:///run/podman/podman.sock"; }'';
        description = ''
          Podman API sockets to watch: socket label (the `socket` label of
          the metrics) to URI. Empty keeps the binary's default socket.
        '';
      };
      rootless = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Also watch every rootless service socket
          /run/user/UID/podman/podman.sock, named after its user. The
          service passes the 0700 /run/user/UID directories with
          CAP_DAC_READ_SEARCH, but connecting needs write access to the
          socket (mode 0660, the user's primary group): list those groups
          in {option}`supplementaryGroups`.
        '';
      };
      group = mkOption {
        type = types.nullOr types.str;
        default = if config.virtualisation.podman.enable or false then "podman" else null;
        defaultText = literalExpression ''if config.virtualisation.podman.enable then "podman" else null'';
        description = ''
          Supplementary group of the service that may open the rootful
          Podman API socket /run/podman/podman.sock. The socket must belong
          to that group: `systemd.sockets.podman.socketConfig = { SocketGroup
          = "podman"; SocketMode = "0660"; }`. Whoever can use that socket
          can start privileged containers, i.e. is root in effect: the
          exporter only reads, but weigh this before granting it.
        '';
      };
    };

    supplementaryGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "alice" ];
      description = "More groups for the service, e.g. those of rootless Podman sockets.";
    };

    btrfs.subvolumes = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Btrfs subvolume and snapshot metrics (panther_btrfs_subvolumes,
        panther_btrfs_snapshots, ...). They need CAP_SYS_ADMIN (the
        BTRFS_IOC_TREE_SEARCH ioctl); false leaves it out of the service,
        and the btrfs collector never tries the walk
        (--no-collector.btrfs.subvolumes) and exports everything else.
      '';
    };

    btrfs.scrubStatus = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Btrfs scrub results (panther_btrfs_scrub_*, and the alerts on
        uncorrectable scrub errors and on scrubs overdue) from btrfs-progs'
        /var/lib/btrfs/scrub.status.UUID, which it writes 0600 root: the
        service needs CAP_DAC_READ_SEARCH for them. false leaves the
        capability out, and with it the last one of a host without
        subvolume metrics, disk health and rootless Podman, whose service
        then runs in a user namespace of its own (see nixos/sandbox.nix and
        README.md for the exposure of each combination).
      '';
    };

    ipAddressAllow = mkOption {
      type = types.nullOr (types.listOf types.str);
      default = null;
      example = [ "192.168.1.10" "fd00::10" ];
      description = ''
        null: no address filter. A list: IPAddressDeny=any and only these
        IP prefixes, and localhost, may reach the service or be reached by
        it: the Prometheus host(s) that scrape it and a DogStatsD host
        (datadog.address) that is not local. Host names do not work here
        (systemd filters on addresses).
      '';
    };

    diskHealth = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          SMART health, wear and errors of every NVMe and SATA disk (the
          diskhealth collector, through smartctl). Grants the service
          CAP_SYS_RAWIO and CAP_SYS_ADMIN and read access to /dev/sd* and
          /dev/nvme*n* (see nixos/sandbox.nix).
        '';
      };
      smartctl = mkOption {
        type = types.str;
        default = "${pkgs.smartmontools}/bin/smartctl";
        defaultText = literalExpression ''"''${pkgs.smartmontools}/bin/smartctl"'';
        description = "smartctl binary (smartmontools 7.0 or newer, for --json).";
      };
      interval = mkOption {
        type = types.str;
        default = "6h";
        description = "How often every disk is read. A disk in standby is not woken.";
      };
    };

    boot.dbusAddress = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "unix:path=/run/dbus/system_bus_socket";
      description = "D-Bus address of systemd's bus for the boot collector; null uses the system bus.";
    };

    textfileDirectory = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/var/lib/panther-exporter/textfile";
      description = ''
        Directory of *.prom files for the textfile collector. Other
        services write there; the exporter only reads it.
      '';
    };

    journal = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run the journal collector: errors by unit and kernel events (OOM
          kills, Btrfs and I/O errors, hung tasks, ...) from the journal,
          read through journalctl. The service joins the systemd-journal
          group and keeps its cursor in /var/lib/panther-exporter.
        '';
      };
      journalctl = mkOption {
        type = types.str;
        default = "${config.systemd.package}/bin/journalctl";
        defaultText = literalExpression ''"''${config.systemd.package}/bin/journalctl"'';
        description = "The journalctl the collector runs.";
      };
      priority = mkOption {
        type = types.enum [ "emerg" "alert" "crit" "err" "warning" "notice" "info" "debug" ];
        default = "err";
        description = "Count journal entries at this priority or worse (panther_journal_entries_total).";
      };
      maxUnits = mkOption {
        type = types.ints.positive;
        default = 50;
        description = "Units counted by name; entries of further units are counted as unit=\"other\".";
      };
    };

    datadog = {
      address = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "127.0.0.1:8125";
        description = ''
          DogStatsD address (host:port for UDP, or unix:///path/to/dsd.socket).
          null turns the Datadog sink off, unless datadog.agent runs the
          Agent on the dogstatsd route: then the sink sends to its socket.
        '';
      };
      interval = mkOption {
        type = types.str;
        default = profile.datadogInterval;
        defaultText = literalExpression ''if role == "workstation" then "60s" else "15s"'';
        description = "How often the DogStatsD sink gathers and sends.";
      };
      tags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "env:prod" "site:fra" ];
        description = "Tags (key:value) added to every DogStatsD metric, after `role:` (from {option}`role`).";
      };
      include = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "^panther_(btrfs|podman)_";
        description = "Send only metrics whose Prometheus name matches this regex; null keeps the binary's default.";
      };
      exclude = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "^panther_podman_container_cpu_";
        description = "Do not send metrics whose Prometheus name matches this regex; null keeps the binary's default.";
      };
    };

    units = {
      include = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "^(nix-daemon|postgresql)\\.service$|^user-";
        description = "Regex of unit names the units collector reports; null reports all.";
      };
      exclude = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "^(libpod-.+|run-.+)\\.scope$";
        description = "Regex of unit names to leave out; null keeps the binary's default (Podman's container scopes, which the podman collector reports).";
      };
      maxUnits = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        example = 500;
        description = ''
          Report at most this many units (about 15 series each); beyond it
          the units using the least memory are left out and counted in
          panther_units_omitted. null keeps the binary's default (300).
        '';
      };
    };

    nixGc = {
      wrap = mkOption {
        type = types.bool;
        default = true;
        description = ''
          When {option}`nix.gc.automatic` is on, run nix-gc.service's
          nix-collect-garbage through a wrapper that records when it ran,
          its exit status and what it deleted and freed in
          {option}`nixGc.stateFile`, for panther_nix_gc_last_* (nothing else
          keeps those figures). The output still goes to the journal.
        '';
      };
      stateFile = mkOption {
        type = types.str;
        default = defaultGCState;
        description = "Where the nix-gc wrapper writes and the nix collector reads (world-readable, a few lines).";
      };
    };

    webConfigFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        exporter-toolkit web configuration (TLS, basic auth). It and the
        files it names must be readable by the service's dynamic user, and
        should not be in the Nix store when they hold secrets.
      '';
    };

    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--collector.btrfs.subvolume-interval=10m" ];
      description = "Extra command-line flags for panther-exporter. A flag the module sets too (e.g. an interval) replaces the module's; the repeatable ones (--collector.podman.socket, --datadog.tags) are added.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [{
      assertion = lib.intersectLists cfg.enabledCollectors cfg.disabledCollectors == [ ];
      message = "services.panther-exporter: a collector is both enabled and disabled.";
    } {
      assertion = builtins.all (t: !(lib.hasPrefix "role:" t)) cfg.datadog.tags;
      message = "services.panther-exporter: set the role with services.panther-exporter.role, not a role: tag in datadog.tags.";
    }];

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.port ];

    systemd.services.nix-gc = mkIf (cfg.nixGc.wrap && config.nix.gc.automatic) {
      script = lib.mkForce "exec ${gcWrapper} ${lib.escapeShellArg cfg.nixGc.stateFile} ${config.nix.package.out}/bin/nix-collect-garbage ${config.nix.gc.options}";
    };
    systemd.tmpfiles.rules = mkIf (cfg.nixGc.wrap && config.nix.gc.automatic) [
      "d ${dirOf cfg.nixGc.stateFile} 0755 root root -"
    ];

    systemd.services.panther-exporter = {
      description = "panther-exporter: system, Btrfs, Podman, boot and Nix metrics for Prometheus";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ] ++ optional (config.virtualisation.podman.enable or false) "podman.socket";
      serviceConfig = hardening // {
        ExecStart = utils.escapeSystemdExecArgs ([ (getExe cfg.package) ] ++ flags);
        Restart = "always";
        WorkingDirectory = "/tmp";
        # datadog: the group of the Agent's DogStatsD socket directory.
        SupplementaryGroups = optional (cfg.podman.group != null) cfg.podman.group
          ++ optional agentSocket "datadog"
          ++ optional cfg.journal.enable "systemd-journal" ++ cfg.supplementaryGroups;
        # The journal collector's cursor and counts (journal.state).
        StateDirectory = mkIf cfg.journal.enable "panther-exporter";
        # File descriptors: the units collector keeps the cgroup files of
        # each unit it reports open between scrapes (up to 11 per unit:
        # 3,300 at the default 300 units), using at most half of the limit
        # for them; the other half is for connections and the other
        # collectors. systemd's default soft limit (1024) would leave most
        # units' files to be reopened on every scrape (three system calls
        # per file instead of one; docs/benchmarks.md, units collector).
        LimitNOFILE = if 2 * 11 * unitsMax > 8192 then 2 * 11 * unitsMax else 8192;
      };
    };
  };

  meta.maintainers = [ ];
}
