# Evaluates module.nix and monitoring.nix without nixpkgs, for
# nixos/nixos_test.go: a stand-in for the few nixpkgs lib functions they use
# (same semantics for the data they get), mkIf kept as a marker, and the
# option declarations ignored. It returns the panther-exporter argv (ExecStart
# before escaping), the serviceConfig, and what the server side configures.
# This checks the modules' own logic only; the NixOS VM test
# (nixos/tests/panther-exporter.nix) checks them against real nixpkgs.
{ exporter ? { }, monitoring ? { }, podman ? true }:
let
  lib = rec {
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
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
    literalExpression = x: x;
    mkEnableOption = x: x;
    mkOption = x: x;
    mkDefault = x: x;
    mkIf = condition: content: { _if = condition; inherit content; };
    types = builtins.mapAttrs (_: _: x: x) { listOf = 0; enum = 0; attrsOf = 0; nullOr = 0; }
      // { str = null; port = null; bool = null; path = null; package = null; attrs = null; };
    fileset = {
      toSource = { root, fileset }: root;
      fileFilter = f: dir: dir;
      unions = xs: xs;
    };
  };
  # Resolve the mkIf markers as the module system would.
  resolve = v:
    if builtins.isAttrs v && v ? _if then (if v._if then resolve v.content else null)
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
  };
  utils.escapeSystemdExecArgs = args: args;

  exporterModule = args: import ../module.nix args;
  exporterOpts = (exporterModule { inherit config lib pkgs utils; }).options.services.panther-exporter;
  config = {
    services.panther-exporter = withDefaults exporterOpts exporter;
    services.panther-monitoring = withDefaults monitoringOpts monitoring;
    services.prometheus = { port = 9090; alertmanager.port = 9093; };
    virtualisation.podman.enable = podman;
  };
  exporterConfig = resolve (exporterModule { inherit config lib pkgs utils; }).config;

  monitoringModule = args: import ../monitoring.nix args;
  monitoringOpts = (monitoringModule { inherit config lib pkgs; }).options.services.panther-monitoring;
  monitoringConfig = resolve (monitoringModule { inherit config lib pkgs; }).config;
in
{
  argv = exporterConfig.systemd.services.panther-exporter.serviceConfig.ExecStart;
  serviceConfig = builtins.removeAttrs exporterConfig.systemd.services.panther-exporter.serviceConfig [ "ExecStart" ];
  firewall = exporterConfig.networking.firewall.allowedTCPPorts;
  assertions = map (a: a.assertion) (exporterConfig.assertions ++ monitoringConfig.assertions);
  monitoringFirewall = monitoringConfig.networking.firewall.allowedTCPPorts;
  prometheus = {
    ruleFiles = map toString monitoringConfig.services.prometheus.ruleFiles;
    inherit (monitoringConfig.services.prometheus) scrapeConfigs;
    alertmanagerConfig = monitoringConfig.services.prometheus.alertmanager.configText or null;
  };
  loadCredential = monitoringConfig.systemd.services.alertmanager.serviceConfig.LoadCredential or null;
  dashboards = map (p: toString p.options.path) monitoringConfig.services.grafana.provision.dashboards.settings.providers;
}
