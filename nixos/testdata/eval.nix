# Evaluates the pantherOS modules (../module.nix, which imports every other
# module the flake exports) with nixpkgs' own module system: lib.evalModules
# from nixpkgs' lib (nixpkgsLib: a directory holding lib/, extracted from
# ../shared/nixpkgs-lib by the Go tests), the nixpkgs option declarations of
# ./nixpkgs-options.nix and NixOS' `utils` (./nixpkgs-utils.nix). Option
# types, defaults, mkIf/mkMerge/mkDefault/mkForce priorities and the
# undeclared-option check are the real ones; `failed` lists the messages of
# the assertions that fail, as nixos-rebuild would print them.
#
# Either `host` (a whole host configuration, for the pantherOS host shapes)
# or the pieces exporter/monitoring/logs/podman/persistence/extra.
{ nixpkgsLib
, exporter ? { }
, monitoring ? { }
, podman ? true
, logs ? { }
, persistence ? null
, extra ? { }
, host ? null
}:
let
  lib = import (nixpkgsLib + "/lib");

  # Derivation-shaped stand-ins for the packages the modules name (no
  # nixpkgs tree here): what types.package accepts and lib.getExe reads.
  # (Fixed store paths, one letter each, so that tests can name them.)
  drv = letter: name: mainProgram: rec {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/${lib.concatStrings (lib.replicate 32 letter)}-${name}";
    out = { type = "derivation"; inherit name outPath; };
    meta.mainProgram = mainProgram;
  };
  pkgs = {
    callPackage = _: _: drv "e" "panther-exporter" "panther-exporter";
    buildGoModule = null;
    smartmontools = drv "s" "smartmontools-7.4" "smartctl";
    coreutils = drv "c" "coreutils" "coreutils";
    gnugrep = drv "g" "gnugrep" "grep";
    systemd = drv "s" "systemd" "systemctl";
    nix = drv "n" "nix" "nix";
    victoriametrics = drv "v" "victoriametrics" "victoria-metrics";
    grafanaPlugins.victoriametrics-logs-datasource = drv "p" "victoriametrics-logs-datasource" "victoriametrics-logs-datasource";
    runtimeShell = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-bash/bin/bash";
    writeShellScript = name: _text: "/nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-${name}";
  };

  pieces = {
    services.panther-exporter = exporter;
    services.panther-monitoring = monitoring;
    services.panther-logs = logs;
    virtualisation.podman.enable = podman;
    networking.hostName = "nas";
    nix.gc = { automatic = true; options = "--delete-older-than 14d"; };
    fileSystems = { "/" = { device = "none"; fsType = "tmpfs"; }; "/nix" = { device = "/dev/vda2"; fsType = "btrfs"; }; };
  } // lib.optionalAttrs (persistence != null) { environment.persistence = persistence; };

  eval = lib.evalModules {
    modules = [
      ./nixpkgs-options.nix
      ../module.nix
      { _module.args = { inherit pkgs; utils = import ./nixpkgs-utils.nix { inherit lib; }; }; }
    ] ++ (if host != null then [ host ] else [
      pieces
      # Every test host gives Grafana its secret key, as NixOS 26.05
      # requires (a test without one sets grafana.secretKeyFile = null).
      { services.panther-monitoring.grafana.secretKeyFile = lib.mkDefault "/run/secrets/grafana-secret-key"; }
      extra
    ]);
  };
  config = eval.config;
  svc = config.systemd.services;

  # nixpkgs' prometheus module writes this (filterValidPrometheus drops the
  # nulls of the unset mkOpt options) as prometheus.yml.
  filterValid = x:
    if builtins.isAttrs x then
      lib.mapAttrs (_: filterValid) (lib.filterAttrs (n: v: n != "_module" && v != null) x)
    else if builtins.isList x then map filterValid x
    else x;
  prom = config.services.prometheus;
  prometheusYml = builtins.toJSON (filterValid {
    alerting.alertmanagers = prom.alertmanagers;
    global = prom.globalConfig;
    remote_write = prom.remoteWrite;
    rule_files = map toString prom.ruleFiles;
    scrape_configs = prom.scrapeConfigs;
  });

  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  orNull = name: if svc ? ${name} then svc.${name} else null;
  unitOut = u: if u == null then null else {
    inherit (u) serviceConfig unitConfig after wants wantedBy description restartTriggers;
  };
in
{
  argv = svc.panther-exporter.serviceConfig.ExecStart or "";
  serviceConfig = builtins.removeAttrs (svc.panther-exporter.serviceConfig or { }) [ "ExecStart" ];
  firewall = config.networking.firewall.allowedTCPPorts;
  nixGcScript = svc.nix-gc.script or null;
  tmpfiles = config.systemd.tmpfiles.rules;
  assertions = map (a: a.assertion) config.assertions;
  failed = failedAssertions;
  warnings = config.warnings;
  fleet = {
    vmagent = unitOut (orNull "panther-vmagent");
    scrapeConfig = config.environment.etc."panther-vmagent/scrape.yml".text or null;
    vmalert = unitOut (orNull "panther-vmalert");
    victoriametrics = if config.services.victoriametrics.enable then { inherit (config.services.victoriametrics) enable listenAddress; } else null;
    firewall = config.networking.firewall.allowedTCPPorts;
  };
  datadog = {
    agent = if config.services.datadog-agent.enable then {
      inherit (config.services.datadog-agent) enable site hostname tags extraConfig checks;
      apiKeyFile = if eval.options.services.datadog-agent.apiKeyFile.isDefined then toString config.services.datadog-agent.apiKeyFile else null;
    } else null;
    # (nixpkgs' unit script reads apiKeyFile, unset when the key's assertion fails.)
    serviceConfig = if config.services.datadog-agent.enable && eval.options.services.datadog-agent.apiKeyFile.isDefined then svc.datadog-agent.serviceConfig else null;
    extraGroups = config.users.users.datadog.extraGroups or null;
  };
  monitoringFirewall = config.networking.firewall.allowedTCPPorts;
  prometheus = {
    enable = prom.enable;
    ruleFiles = map toString prom.ruleFiles;
    scrapeConfigs = filterValid prom.scrapeConfigs;
    remoteWrite = filterValid prom.remoteWrite;
    alertmanagerConfig = if prom.alertmanager.enable then prom.alertmanager.configText else null;
    grafanaSecurity = config.services.grafana.settings.security;
    yml = prometheusYml;
  };
  loadCredential = svc.alertmanager.serviceConfig.LoadCredential or null;
  dashboards = if config.services.grafana.provision.dashboards.settings == null then [ ]
    else map (p: toString p.options.path) config.services.grafana.provision.dashboards.settings.providers;
  datasources = if config.services.grafana.provision.datasources.settings == null then [ ]
    else map (d: builtins.removeAttrs d [ "_module" ]) config.services.grafana.provision.datasources.settings.datasources;
  grafana = if config.services.grafana.enable then {
    inherit (config.services.grafana.settings) server security;
    plugins = map toString (if config.services.grafana.declarativePlugins == null then [ ] else config.services.grafana.declarativePlugins);
  } else null;
  victorialogs = if config.services.victorialogs.enable then { inherit (config.services.victorialogs) enable listenAddress extraOptions; } else null;
  logs = {
    uploadURL = if config.services.journald.upload.enable then config.services.journald.upload.settings.Upload.URL else null;
    uploadUnit = if config.services.journald.upload.enable then unitOut svc.systemd-journal-upload else null;
    datadogLogs = config.services.panther-exporter.datadog.agent.logs.enable;
    warnings = config.warnings;
    assertions = map (a: a.assertion) config.assertions;
  };
  # Every unit the pantherOS modules define, for systemd-analyze verify.
  units = lib.mapAttrs (_: unitOut) (lib.filterAttrs (n: _: builtins.elem n [ "panther-exporter" "panther-vmagent" "panther-vmalert" ]) svc);
}
