# Evaluates module.nix and monitoring.nix without nixpkgs, for
# nixos/nixos_test.go: a stand-in for the few nixpkgs lib functions they use
# (same semantics for the data they get), mkIf kept as a marker, and the
# option declarations ignored. It returns the panther-exporter argv (ExecStart
# before escaping), the serviceConfig, and what the server side configures.
# This checks the modules' own logic only; the NixOS VM test
# (nixos/tests/panther-exporter.nix) checks them against real nixpkgs.
{ exporter ? { }, monitoring ? { }, podman ? true, logs ? { }, persistence ? null }:
let
  lib = rec {
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    optionalAttrs = c: a: if c then a else { };
    mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
    filterAttrs = f: a: builtins.listToAttrs (builtins.concatMap (n: if f n a.${n} then [ { name = n; value = a.${n}; } ] else [ ]) (builtins.attrNames a));
    toInt = s: builtins.fromJSON s;
    hasInfix = infix: s: builtins.match ".*${escapeRegex infix}.*" s != null;
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    hasSuffix = suf: s:
      let ls = builtins.stringLength s; lf = builtins.stringLength suf;
      in lf <= ls && builtins.substring (ls - lf) lf s == suf;
    escapeRegex = builtins.replaceStrings [ "." "[" "]" "(" ")" "*" "+" "?" "^" "$" "|" "{" "}" "\\" ]
      [ "\\." "\\[" "\\]" "\\(" "\\)" "\\*" "\\+" "\\?" "\\^" "\\$" "\\|" "\\{" "\\}" "\\\\" ];
    getExe = p: "${p}/bin/panther-exporter";
    intersectLists = a: b: builtins.filter (x: builtins.elem x a) b;
    filter = builtins.filter;
    any = builtins.any;
    attrValues = builtins.attrValues;
    concatMap = builtins.concatMap;
    mkMerge = xs: { _merge = xs; };
    literalExpression = x: x;
    mkEnableOption = x: x;
    mkOption = x: x;
    mkDefault = x: x;
    mkIf = condition: content: { _if = condition; inherit content; };
    mkForce = x: x;
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
    types = builtins.mapAttrs (_: _: x: x) { listOf = 0; enum = 0; attrsOf = 0; nullOr = 0; submodule = 0; }
      // { either = a: b: a; str = null; port = null; bool = null; path = null; package = null; attrs = null; ints.positive = null; };
    fileset = {
      toSource = { root, fileset }: root;
      fileFilter = f: dir: dir;
      unions = xs: xs;
    };
  };
  # Resolve the mkIf and mkMerge markers as the module system would: the
  # parts of a merge are merged attribute by attribute, lists concatenated.
  merge = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (n: v: if a ? ${n} then merge a.${n} v else v) b
    else if builtins.isList a && builtins.isList b then a ++ b
    else b;
  resolve = v:
    if builtins.isAttrs v && v ? _if then (if v._if then resolve v.content else null)
    else if builtins.isAttrs v && v ? _merge then
      builtins.foldl' (acc: x: let r = resolve x; in if r == null then acc else merge acc r) { } v._merge
    else if builtins.isAttrs v then builtins.mapAttrs (_: resolve) v
    else v;
  withDefaults = opts: set:
    builtins.mapAttrs (n: o:
      if set ? ${n} && builtins.isAttrs o && !(o ? default) && builtins.isAttrs set.${n} then withDefaults o set.${n}
      else if set ? ${n} then set.${n}
      else if builtins.isAttrs o && o ? default then o.default
      else if builtins.isAttrs o then withDefaults o { }
      else null) opts;
  pkgs = {
    callPackage = _: _: "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-panther-exporter";
    smartmontools = "/nix/store/ssssssssssssssssssssssssssssssss-smartmontools-7.4";
    runtimeShell = "/nix/store/ssssssssssssssssssssssssssssssss-bash/bin/bash";
    writeShellScript = name: text: "/nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-${name}";
    coreutils = "/nix/store/cccccccccccccccccccccccccccccccc-coreutils";
    gnugrep = "/nix/store/gggggggggggggggggggggggggggggggg-gnugrep";
    victoriametrics = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-victoriametrics";
  };
  # Option declarations of several modules under one attribute set, as the
  # module system merges them (module.nix and datadog.nix both declare
  # services.panther-exporter.datadog.*).
  mergeOpts = a: b: a // builtins.mapAttrs (n: v:
    if a ? ${n} && builtins.isAttrs v && builtins.isAttrs a.${n} && !(v ? default) && !(a.${n} ? default)
    then mergeOpts a.${n} v else v) b;
  orEmpty = v: if v == null then { } else v;
  utils.escapeSystemdExecArgs = args: args;

  exporterModule = args: import ../module.nix args;
  datadogModule = args: import ../datadog.nix args;
  fleetModule = args: import ../fleet.nix args;
  fleetOpts = (fleetModule { inherit config lib pkgs utils; }).options.services;
  exporterOpts = mergeOpts (mergeOpts (exporterModule { inherit config lib pkgs utils; }).options.services.panther-exporter
    (datadogModule { inherit config lib pkgs; }).options.services.panther-exporter) fleetOpts.panther-exporter;
  config = {
    # Settings of options other modules declare (role, from the host roles
    # module) pass through as given.
    services.panther-exporter = withDefaults exporterOpts exporter // removeAttrs exporter (builtins.attrNames exporterOpts);
    networking.hostName = "nas";
    services.panther-monitoring = withDefaults monitoringOpts monitoring;
    services.prometheus = { port = 9090; alertmanager.port = 9093; };
    virtualisation.podman.enable = podman;
    nix = { gc = { automatic = true; options = "--delete-older-than 14d"; }; package.out = "/nix/store/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn-nix"; };
    systemd.package = "/nix/store/ssssssssssssssssssssssssssssssss-systemd";
    services.panther-logs = withDefaults logsOpts logs;
    fileSystems = { "/" = { }; "/nix" = { }; };
  } // (if persistence == null then { } else { environment.persistence = persistence; });
  exporterConfig = orEmpty (resolve (exporterModule { inherit config lib pkgs utils; }).config);
  datadogConfig = orEmpty (resolve (datadogModule { inherit config lib pkgs; }).config);

  logsModule = args: import ../logs.nix args;
  logsOpts = (logsModule { inherit config lib; }).options.services.panther-logs;
  logsConfig = resolve (logsModule { inherit config lib; }).config;

  monitoringModule = args: import ../monitoring.nix args;
  monitoringOpts = mergeOpts (monitoringModule { inherit config lib pkgs; }).options.services.panther-monitoring fleetOpts.panther-monitoring;
  fleetConfig = orEmpty (resolve (fleetModule { inherit config lib pkgs utils; }).config);
  monitoringConfig = orEmpty (resolve (monitoringModule { inherit config lib pkgs; }).config);
in
{
  argv = exporterConfig.systemd.services.panther-exporter.serviceConfig.ExecStart or [ ];
  serviceConfig = builtins.removeAttrs (exporterConfig.systemd.services.panther-exporter.serviceConfig or { }) [ "ExecStart" ];
  firewall = exporterConfig.networking.firewall.allowedTCPPorts or null;
  nixGcScript = exporterConfig.systemd.services.nix-gc.script or null;
  tmpfiles = exporterConfig.systemd.tmpfiles.rules or null;
  assertions = map (a: a.assertion) (exporterConfig.assertions or [ ] ++ (datadogConfig.assertions or [ ]) ++ (monitoringConfig.assertions or [ ]) ++ fleetConfig.assertions or [ ]);
  # The messages of the assertions that fail.
  failed = map (a: a.message) (builtins.filter (a: !a.assertion)
    (exporterConfig.assertions or [ ] ++ (datadogConfig.assertions or [ ]) ++ (monitoringConfig.assertions or [ ]) ++ fleetConfig.assertions or [ ]));
  fleet = {
    vmagent = fleetConfig.systemd.services.panther-vmagent or null;
    scrapeConfig = fleetConfig.environment.etc."panther-vmagent/scrape.yml".text or null;
    vmalert = fleetConfig.systemd.services.panther-vmalert or null;
    victoriametrics = fleetConfig.services.victoriametrics or null;
    firewall = fleetConfig.networking.firewall.allowedTCPPorts or null;
  };
  datadog = {
    agent = datadogConfig.services.datadog-agent or null;
    serviceConfig = datadogConfig.systemd.services.datadog-agent.serviceConfig or null;
    extraGroups = datadogConfig.users.users.datadog.extraGroups or null;
  };
  monitoringFirewall = monitoringConfig.networking.firewall.allowedTCPPorts or null;
  warnings = monitoringConfig.warnings or [ ];
  prometheus = {
    ruleFiles = map toString (monitoringConfig.services.prometheus.ruleFiles or [ ]);
    scrapeConfigs = monitoringConfig.services.prometheus.scrapeConfigs or [ ];
    remoteWrite = monitoringConfig.services.prometheus.remoteWrite or null;
    alertmanagerConfig = monitoringConfig.services.prometheus.alertmanager.configText or null;
    grafanaSecurity = monitoringConfig.services.grafana.settings.security or null;
  };
  loadCredential = monitoringConfig.systemd.services.alertmanager.serviceConfig.LoadCredential or null;
  dashboards = map (p: toString p.options.path) (monitoringConfig.services.grafana.provision.dashboards.settings.providers or [ ]);
  datasources = monitoringConfig.services.grafana.provision.datasources.settings.datasources or [ ];
  victorialogs = monitoringConfig.services.victorialogs or null;
  logs = {
    uploadURL = logsConfig.services.journald.upload.settings.Upload.URL or null;
    uploadUnit = logsConfig.systemd.services.systemd-journal-upload or null;
    datadogLogs = logsConfig.services.panther-exporter.datadog.agent.logs.enable or null;
    warnings = logsConfig.warnings;
    assertions = map (a: a.assertion) (logsConfig.assertions or [ ]);
  };
}
