# Fleet mode (docs/fleet.md), imported by ./module.nix.
#
# Host side, services.panther-exporter.push: the host pushes instead of
# being scraped. vmagent (VictoriaMetrics' agent) scrapes the local
# exporter with the labels pull gives (job `panther`, `instance` = host
# name, `role`) plus transport="push" (what tells ExporterDown that a host
# silent in the store is down, not unscraped), remote-writes to push.url,
# and keeps what it cannot send in
# an on-disk buffer sized to cover push.bufferDuration of outage:
#
#   services.panther-exporter.push = {
#     enable = true;
#     url = "http://monitor.lan:8428/api/v1/write";
#   };
#
# Server side, services.panther-monitoring.fleet: as soon as one host of
# services.panther-monitoring.hosts has `push = true` (or fleet.enable), a
# single-node VictoriaMetrics takes remote writes, Prometheus keeps
# scraping the pull hosts and writes them there too, and vmalert evaluates
# the same rule files against the store, notifying the same Alertmanager
# (./monitoring.nix does the Prometheus and Grafana side). fleet.store
# points everything at another store instead (a VictoriaMetrics cluster).
#
# vmagent and vmalert run as units of their own rather than through
# nixpkgs' services.vmagent/services.vmalert, whose options changed between
# releases (vmalert became services.vmalert.instances): the flags that
# matter here (the buffer's path and cap, the credential) are spelled out
# once, and nixos/fleet_test.go runs Debian's vmagent and vmalert with them.
{ config, lib, pkgs, utils, ... }:

let
  inherit (lib) literalExpression mkIf mkMerge mkOption optional optionals types;

  cfg = config.services.panther-exporter;
  push = cfg.push;
  mon = config.services.panther-monitoring;
  store = import ./fleet-store.nix { inherit lib; cfg = mon; };
  secrets = import ./secrets.nix { inherit lib; };

  # Bytes per 1000 samples in vmagent's on-disk queue (zstd-compressed
  # remote-write blocks, one block per flush, so each scrape's labels are
  # stored again), measured with Debian's vmagent 1.79 and this exporter:
  # docs/fleet.md#buffer-size has the command and the figures.
  bytesPerKSample = 26300;

  # "90s", "15m", "24h", "7d", "2w" as seconds; null when it is none of these.
  seconds = d:
    let m = builtins.match "([0-9]+)([smhdw])" d;
    in if m == null then null
       else lib.toInt (builtins.elemAt m 0) * {
         s = 1; m = 60; h = 3600; d = 86400; w = 604800;
       }.${builtins.elemAt m 1};

  byRole = {
    server = { bufferDuration = "1d"; scrapeInterval = "15s"; };
    workstation = { bufferDuration = "7d"; scrapeInterval = "60s"; };
  };
  roleDefault = byRole.${cfg.role};

  bufferSeconds = seconds push.bufferDuration;
  intervalSeconds = seconds push.scrapeInterval;
  # Samples per scrape (the exporter's series plus vmagent's 5: up,
  # scrape_duration_seconds, ...) times scrapes in the outage times bytes
  # per sample.
  computedDiskUsage =
    if bufferSeconds == null || intervalSeconds == null || intervalSeconds == 0 then 0
    else (push.seriesPerScrape + 5) * (bufferSeconds / intervalSeconds) * bytesPerKSample / 1000;
  maxDiskUsage = if push.maxDiskUsage != null then push.maxDiskUsage else computedDiskUsage;

  # The target vmagent scrapes: the exporter's own listen address, or
  # loopback when it listens on every address.
  target =
    if cfg.listenAddress == "" || cfg.listenAddress == "0.0.0.0" then "127.0.0.1:${toString cfg.port}"
    else if cfg.listenAddress == "::" then "[::1]:${toString cfg.port}"
    else if lib.hasInfix ":" cfg.listenAddress then "[${cfg.listenAddress}]:${toString cfg.port}"
    else "${cfg.listenAddress}:${toString cfg.port}";

  # The scrape configuration, as JSON (which is YAML): the same job name and
  # target labels as services.panther-monitoring gives a pulled host, and
  # transport = "push", which the rules' "silent pushed host" arms select.
  scrapeConfig = builtins.toJSON {
    scrape_configs = [ ({
      job_name = push.job;
      scrape_interval = push.scrapeInterval;
      static_configs = [{
        targets = [ target ];
        labels = { instance = push.instance; role = cfg.role; transport = "push"; };
      }];
    } // push.scrapeConfig) ];
  };

  credDir = "/run/credentials/panther-vmagent.service";
  passwordPath = "${credDir}/remote-write-password";
  vmagentFlags = [
    "-promscrape.config=/etc/panther-vmagent/scrape.yml"
    "-remoteWrite.url=${toString push.url}"
    "-remoteWrite.tmpDataPath=/var/lib/panther-vmagent/buffer"
    "-remoteWrite.maxDiskUsagePerURL=${toString maxDiskUsage}"
    "-httpListenAddr=${push.listenAddress}"
  ] ++ optionals (push.basicAuth.username != null) [
    "-remoteWrite.basicAuth.username=${push.basicAuth.username}"
    "-remoteWrite.basicAuth.passwordFile=${passwordPath}"
  ] ++ push.extraFlags;

  # Server side.
  ruleDir = ../rules/prometheus;
  ruleFiles = map (f: ruleDir + "/${f}")
    (builtins.filter (lib.hasSuffix ".rules.yml") (builtins.attrNames (builtins.readDir ruleDir)));
  alertmanagerOn = mon.pagerduty.routingKeyFile != null;
  vmalertFlags =
    map (f: "-rule=${toString f}") (ruleFiles ++ optional mon.nodeExporterCompat (ruleDir + "/optional/node-exporter-compat.rules.yml"))
    ++ [
      "-datasource.url=${toString store.queryUrl}"
      "-evaluationInterval=${mon.fleet.evaluationInterval}"
      "-httpListenAddr=127.0.0.1:${toString mon.fleet.vmalertPort}"
    ]
    # Recording rules' results and the alert state (ALERTS,
    # ALERTS_FOR_STATE) go to the store, the state is read back at start, so
    # a restart does not reset every `for:` (vmalert refuses to start
    # without it: the rule files hold recording rules too).
    ++ (if store.writeBase != null then [ "-remoteWrite.url=${store.writeBase}" ]
        else [ "-remoteWrite.url=${toString store.writeUrl}" "-remoteWrite.disablePathAppend" ])
    ++ [ "-remoteRead.url=${toString store.queryUrl}" ]
    ++ optional alertmanagerOn "-notifier.url=http://127.0.0.1:${toString config.services.prometheus.alertmanager.port}"
    # Without Alertmanager, vmalert still records ALERTS in the store
    # (-notifier.blackhole: nixpkgs' vmalert has it, Debian's 1.79 does not).
    ++ optional (!alertmanagerOn) "-notifier.blackhole"
    ++ mon.fleet.vmalertExtraFlags;
in
{
  options.services.panther-exporter.push = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Push instead of being scraped: run vmagent, which scrapes this
        host's exporter and remote-writes to {option}`url`, buffering on
        disk while the store is unreachable (docs/fleet.md). Pull (the
        monitoring host scrapes the exporter) stays the default; on the
        monitoring host give this host `push = true` in
        services.panther-monitoring.hosts.
      '';
    };
    url = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "http://monitor.lan:8428/api/v1/write";
      description = ''
        Prometheus remote-write URL of the central store: the monitoring
        host's VictoriaMetrics (`http://HOST:8428/api/v1/write`), or any
        other (a VictoriaMetrics cluster's vminsert
        `http://vminsert:8480/insert/0/prometheus/api/v1/write`, Prometheus
        with its remote-write receiver, Thanos Receive).
      '';
    };
    instance = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = ''
        The `instance` label of every series: the host's name in
        services.panther-monitoring.hosts, as a pulled host gets it.
      '';
    };
    job = mkOption {
      type = types.str;
      default = "panther";
      description = "The `job` label, the scrape job name pull uses (the rules do not depend on it).";
    };
    scrapeInterval = mkOption {
      type = types.str;
      default = roleDefault.scrapeInterval;
      defaultText = literalExpression ''if role == "workstation" then "60s" else "15s"'';
      description = "How often vmagent scrapes the exporter (as the monitoring host's pull intervals per role).";
    };
    bufferDuration = mkOption {
      type = types.str;
      default = roleDefault.bufferDuration;
      defaultText = literalExpression ''if role == "workstation" then "7d" else "1d"'';
      example = "3d";
      description = ''
        The longest outage of the link to the store that loses nothing
        (`90s`, `15m`, `24h`, `7d`, `2w`): the on-disk buffer is sized
        from it (see {option}`maxDiskUsage`). A laptop can be away for a
        week; a server's link is rarely down for a day.
      '';
    };
    seriesPerScrape = mkOption {
      type = types.ints.positive;
      default = 2000;
      description = ''
        Series one scrape of the exporter returns, for sizing the buffer
        (`curl -s localhost:9567/metrics | grep -vc '^#'`; a host with
        Podman containers and many systemd units has more).
      '';
    };
    maxDiskUsage = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      description = ''
        Cap of the on-disk buffer in bytes (vmagent's
        -remoteWrite.maxDiskUsagePerURL; past it the oldest data is
        dropped). null computes it: (seriesPerScrape + 5) samples per
        scrape x bufferDuration / scrapeInterval scrapes x the measured
        bytes per sample (docs/fleet.md#buffer-size). vmagent keeps its
        buffer in chunk files of up to ~500 MB, so the disk can hold up to
        one chunk more than this before the oldest is freed.
      '';
    };
    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1:8429";
      description = "vmagent's own HTTP address (its /metrics: buffer size, remote-write errors).";
    };
    basicAuth = {
      username = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Basic-auth user for the remote-write URL; null sends none.";
      };
      passwordFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/remote-write-password";
        description = ''
          File holding the basic-auth password, written at run time by a
          secret manager (outside the Nix store); vmagent reads it through
          LoadCredential.
        '';
      };
    };
    scrapeConfig = mkOption {
      type = types.attrs;
      default = { };
      example = literalExpression ''{ scheme = "https"; tls_config.insecure_skip_verify = true; }'';
      description = "More settings for vmagent's scrape job (TLS or basic auth when the exporter has a webConfigFile).";
    };
    package = mkOption {
      type = types.package;
      default = pkgs.victoriametrics;
      defaultText = literalExpression "pkgs.victoriametrics";
      description = "The package holding bin/vmagent.";
    };
    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "-remoteWrite.rateLimit=100000" ];
      description = "Extra vmagent flags.";
    };
  };

  options.services.panther-monitoring.fleet = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Fleet mode without a pushing host yet. It is on anyway as soon as a
        host of {option}`services.panther-monitoring.hosts` has
        `push = true`: the store (fleet.store) holds every host's series,
        Prometheus scrapes the pull hosts and writes them there, and vmalert
        evaluates the rules against the store (docs/fleet.md).
      '';
    };
    store = {
      port = mkOption {
        type = types.port;
        default = 8428;
        description = ''
          Port of the single-node VictoriaMetrics (services.victoriametrics)
          run here: agents write to http://THIS-HOST:PORT/api/v1/write.
        '';
      };
      writeUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "http://vminsert.lan:8480/insert/0/prometheus/api/v1/write";
        description = ''
          Remote-write URL of another store; set with {option}`queryUrl`, no
          VictoriaMetrics runs here. Point the hosts' push.url at the same
          store.
        '';
      };
      queryUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "http://vmselect.lan:8481/select/0/prometheus";
        description = "Prometheus query API base URL of that store (vmalert's datasource, Grafana's data source).";
      };
    };
    evaluationInterval = mkOption {
      type = types.str;
      default = "1m";
      description = "How often vmalert evaluates the rules (Prometheus' default evaluation_interval).";
    };
    vmalertPort = mkOption {
      type = types.port;
      default = 8880;
      description = "vmalert's HTTP port on 127.0.0.1 (its alerts and rule state).";
    };
    vmalertExtraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra vmalert flags.";
    };
    package = mkOption {
      type = types.package;
      default = pkgs.victoriametrics;
      defaultText = literalExpression "pkgs.victoriametrics";
      description = "The package holding bin/vmalert.";
    };
  };

  config = mkMerge [
    (mkIf (cfg.enable && push.enable) {
      assertions = [{
        assertion = push.url != null && builtins.match "https?://[^/]+.*" push.url != null;
        message = "services.panther-exporter.push.url must be the http(s):// remote-write URL of the store when push.enable is set (e.g. http://monitor.lan:8428/api/v1/write).";
      } {
        assertion = seconds push.bufferDuration != null;
        message = "services.panther-exporter.push.bufferDuration must be a number and one of s, m, h, d, w (e.g. 7d).";
      } {
        assertion = seconds push.scrapeInterval != null && seconds push.scrapeInterval > 0;
        message = "services.panther-exporter.push.scrapeInterval must be a positive number and one of s, m, h, d, w (e.g. 15s).";
      } {
        assertion = (push.basicAuth.username == null) == (push.basicAuth.passwordFile == null);
        message = "services.panther-exporter.push.basicAuth: set both username and passwordFile, or neither.";
      }
        (secrets.assertion "services.panther-exporter.push.basicAuth.passwordFile" push.basicAuth.passwordFile)
      ];

      environment.etc."panther-vmagent/scrape.yml".text = scrapeConfig;

      systemd.services.panther-vmagent = {
        description = "vmagent: pushes this host's panther-exporter series to the central store, buffering on disk";
        wantedBy = [ "multi-user.target" ];
        after = [ "network-online.target" "panther-exporter.service" ];
        wants = [ "network-online.target" ];
        restartTriggers = [ scrapeConfig ];
        serviceConfig = {
          ExecStart = utils.escapeSystemdExecArgs ([ "${push.package}/bin/vmagent" ] ++ vmagentFlags);
          Restart = "always";
          RestartSec = "10s";
          DynamicUser = true;
          # The buffer survives restarts and reboots: what a laptop scraped
          # on the train is sent when it is back.
          StateDirectory = "panther-vmagent";
          WorkingDirectory = "/var/lib/panther-vmagent";
          LoadCredential = optional (push.basicAuth.passwordFile != null) "remote-write-password:${push.basicAuth.passwordFile}";
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectControlGroups = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
          CapabilityBoundingSet = "";
        };
      };
    })

    (mkIf (mon.enable && store.on) {
      assertions = [{
        assertion = (mon.fleet.store.writeUrl == null) == (mon.fleet.store.queryUrl == null);
        message = "services.panther-monitoring.fleet.store: set both writeUrl and queryUrl (another store), or neither (VictoriaMetrics here).";
      }];

      services.victoriametrics = mkIf store.local {
        enable = true;
        listenAddress = ":${toString mon.fleet.store.port}";
      };

      systemd.services.panther-vmalert = {
        description = "vmalert: the pantherOS rules evaluated against the fleet's store";
        wantedBy = [ "multi-user.target" ];
        after = [ "network-online.target" ] ++ optional store.local "victoriametrics.service" ++ optional alertmanagerOn "alertmanager.service";
        wants = [ "network-online.target" ];
        serviceConfig = {
          ExecStart = utils.escapeSystemdExecArgs ([ "${mon.fleet.package}/bin/vmalert" ] ++ vmalertFlags);
          Restart = "always";
          RestartSec = "10s";
          DynamicUser = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" ];
          CapabilityBoundingSet = "";
        };
      };

      networking.firewall.allowedTCPPorts = mkIf (mon.openFirewall && store.local) [ mon.fleet.store.port ];
    })
  ];
}
