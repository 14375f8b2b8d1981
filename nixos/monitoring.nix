# Server side of pantherOS monitoring, services.panther-monitoring:
# Prometheus scraping a list of hosts with this repository's rules,
# Alertmanager routing critical alerts to PagerDuty, Grafana with this
# repository's dashboards. Imported by ./module.nix.
#
#   services.panther-monitoring = {
#     enable = true;
#     hosts = [ "nas.lan:9567" "web1.lan:9567" ];
#     pagerduty.routingKeyFile = "/run/secrets/pagerduty-routing-key"; # agenix/sops-nix
#     grafana.secretKeyFile = "/run/secrets/grafana-secret-key";
#   };
{ config, lib, pkgs, ... }:

let
  inherit (lib) filter hasSuffix literalExpression mkEnableOption mkIf mkOption optional types;

  cfg = config.services.panther-monitoring;
  secrets = import ./secrets.nix { inherit lib; };

  # Every rule file of rules/prometheus (the promtool tests under
  # rules/prometheus/tests are not rule files).
  rulesDir = ../rules/prometheus;
  ruleFiles = map (f: rulesDir + "/${f}")
    (filter (hasSuffix ".rules.yml") (builtins.attrNames (builtins.readDir rulesDir)));
  # Optional: node_exporter's series recorded from panther ones (docs/migrating.md).
  nodeExporterCompatRules = rulesDir + "/optional/node-exporter-compat.rules.yml";

  # Only the dashboards' JSON, not the Go that generates them.
  dashboards = lib.fileset.toSource {
    root = ../dashboards/grafana;
    fileset = lib.fileset.fileFilter (f: f.hasExt "json") ../dashboards/grafana;
  };

  # The routing key reaches Alertmanager as a systemd credential: the file
  # named by pagerduty.routingKeyFile stays where it is (never copied to the
  # Nix store) and systemd hands the service a private copy here.
  routingKeyPath = "/run/credentials/alertmanager.service/pagerduty-routing-key";

  # rules/alertmanager/alertmanager.yml is the route tree (critical alerts
  # page, ExporterDown inhibits the rest of its host); only the routing key
  # file changes.
  exampleKeyPath = "/run/secrets/alertmanager/pagerduty-routing-key";
  exampleConfig = builtins.readFile ../rules/alertmanager/alertmanager.yml;
  alertmanagerConfig =
    if lib.hasInfix "routing_key_file: ${exampleKeyPath}" exampleConfig
    then builtins.replaceStrings [ exampleKeyPath ] [ routingKeyPath ] exampleConfig
    else throw "rules/alertmanager/alertmanager.yml no longer has routing_key_file: ${exampleKeyPath}; update nixos/monitoring.nix";
in
{
  options.services.panther-monitoring = {
    enable = mkEnableOption "the pantherOS monitoring server (Prometheus, Alertmanager, Grafana)";

    hosts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "nas.lan:9567" "[fd00::2]:9567" ];
      description = "panther-exporter targets (host:port) for the Prometheus job `panther`.";
    };

    scrapeInterval = mkOption {
      type = types.str;
      default = "15s";
      description = "Scrape interval of the `panther` job.";
    };

    scrapeConfig = mkOption {
      type = types.attrs;
      default = { };
      example = literalExpression ''
        { scheme = "https"; basic_auth = { username = "prometheus"; password_file = "/run/secrets/panther-scrape"; }; }
      '';
      description = ''
        More settings for the `panther` scrape job, e.g. TLS or basic auth
        when the exporters have a webConfigFile.
      '';
    };

    nodeExporterCompat = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Also load rules/prometheus/optional/node-exporter-compat.rules.yml,
        which records node_exporter's most used series (node_cpu_seconds_total,
        node_memory_*, node_filesystem_*, node_disk_*, node_network_*,
        node_load*, ...) from panther ones, so that dashboards written for
        node_exporter keep working (docs/migrating.md).
      '';
    };

    pagerduty.routingKeyFile = mkOption {
      type = types.nullOr (types.either types.str types.path);
      default = null;
      example = "/run/secrets/pagerduty-routing-key";
      description = ''
        File holding the PagerDuty Events API v2 routing key, written at run
        time by a secret manager (OpNix, agenix, sops-nix); a literal key or
        a path in the Nix store is refused. Alertmanager reads it through
        systemd's LoadCredential. null leaves Alertmanager off.
      '';
    };

    grafana = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run Grafana with the pantherOS dashboards.";
      };
      port = mkOption {
        type = types.port;
        default = 3000;
        description = "Grafana's HTTP port.";
      };
      secretKeyFile = mkOption {
        type = types.nullOr (types.either types.str types.path);
        default = null;
        description = ''
          File with Grafana's secret_key, from a secret manager (outside the
          Nix store). null leaves services.grafana.settings.security.secret_key
          to you.
        '';
      };
      adminPasswordFile = mkOption {
        type = types.nullOr (types.either types.str types.path);
        default = null;
        example = literalExpression "config.services.onepassword-secrets.secretPaths.grafanaAdminPassword";
        description = ''
          File with the password of Grafana's admin user, from a secret
          manager (outside the Nix store). null leaves
          services.grafana.settings.security.admin_password to you.
        '';
      };
    };

    logs = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Run VictoriaLogs (services.victorialogs) as the log store the hosts
          ship their journal to (services.panther-logs.upload.url =
          "http://THIS-HOST:PORT") and provision it as a Grafana data source
          (the victoriametrics-logs-datasource plugin) for the Logs dashboard.
        '';
      };
      port = mkOption {
        type = types.port;
        default = 9428;
        description = "VictoriaLogs' HTTP port (journald ingestion and LogsQL queries).";
      };
      retention = mkOption {
        type = types.str;
        default = "30d";
        example = "12w";
        description = "How long VictoriaLogs keeps logs (-retentionPeriod).";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the Prometheus, Alertmanager, Grafana and (with logs) VictoriaLogs ports.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      (secrets.assertion "services.panther-monitoring.pagerduty.routingKeyFile" cfg.pagerduty.routingKeyFile)
      (secrets.assertion "services.panther-monitoring.grafana.secretKeyFile" cfg.grafana.secretKeyFile)
      (secrets.assertion "services.panther-monitoring.grafana.adminPasswordFile" cfg.grafana.adminPasswordFile)
    ];

    services.prometheus = {
      enable = true;
      ruleFiles = ruleFiles ++ optional cfg.nodeExporterCompat nodeExporterCompatRules;
      scrapeConfigs = [
        ({
          job_name = "panther";
          scrape_interval = cfg.scrapeInterval;
          static_configs = [{ targets = cfg.hosts; }];
        } // cfg.scrapeConfig)
      ];
      alertmanagers = mkIf (cfg.pagerduty.routingKeyFile != null) [{
        static_configs = [{ targets = [ "127.0.0.1:${toString config.services.prometheus.alertmanager.port}" ]; }];
      }];

      alertmanager = mkIf (cfg.pagerduty.routingKeyFile != null) {
        enable = true;
        configText = alertmanagerConfig;
      };
    };

    systemd.services.alertmanager.serviceConfig.LoadCredential =
      mkIf (cfg.pagerduty.routingKeyFile != null) [ "pagerduty-routing-key:${toString cfg.pagerduty.routingKeyFile}" ];

    services.victorialogs = mkIf cfg.logs.enable {
      enable = true;
      listenAddress = ":${toString cfg.logs.port}";
      extraOptions = [ "-retentionPeriod=${cfg.logs.retention}" ];
    };

    services.grafana = mkIf cfg.grafana.enable {
      enable = true;
      declarativePlugins = mkIf cfg.logs.enable [ pkgs.grafanaPlugins.victoriametrics-logs-datasource ];
      settings.server.http_addr = lib.mkDefault "0.0.0.0";
      settings.server.http_port = cfg.grafana.port;
      # Grafana reads $__file{PATH} at start; the secret stays out of the store.
      settings.security.secret_key = mkIf (cfg.grafana.secretKeyFile != null) "$__file{${toString cfg.grafana.secretKeyFile}}";
      settings.security.admin_password = mkIf (cfg.grafana.adminPasswordFile != null) "$__file{${toString cfg.grafana.adminPasswordFile}}";
      provision = {
        enable = true;
        # The dashboards choose their data source with the $datasource
        # variable; this one is the default.
        datasources.settings.datasources = [{
          name = "Prometheus";
          type = "prometheus";
          url = "http://127.0.0.1:${toString config.services.prometheus.port}";
          isDefault = true;
        }] ++ optional cfg.logs.enable {
          # The Logs dashboard's $logs variable picks data sources of this type.
          name = "VictoriaLogs";
          uid = "victorialogs";
          type = "victoriametrics-logs-datasource";
          url = "http://127.0.0.1:${toString cfg.logs.port}";
        };
        dashboards.settings.providers = [{
          name = "pantheros";
          folder = "pantherOS";
          options.path = dashboards;
        }];
      };
    };

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall (
      [ config.services.prometheus.port ]
      ++ optional (cfg.pagerduty.routingKeyFile != null) config.services.prometheus.alertmanager.port
      ++ optional cfg.grafana.enable cfg.grafana.port
      ++ optional cfg.logs.enable cfg.logs.port);
  };
}
