# Server side of pantherOS monitoring, services.panther-monitoring:
# Prometheus scraping a list of hosts with this repository's rules,
# Alertmanager routing critical alerts to PagerDuty, Grafana with this
# repository's dashboards. Imported by ./module.nix.
#
#   services.panther-monitoring = {
#     enable = true;
#     hosts = {
#       hetzner-vps = { address = "hetzner-vps.lan:9567"; role = "server"; };
#       yoga = { address = "yoga.lan:9567"; role = "workstation"; };
#     };
#     pagerduty.routingKeyFile = "/run/secrets/pagerduty-routing-key"; # agenix/sops-nix
#     warnings.chat.webhookUrlFile = "/run/secrets/chat-webhook-url";
#     grafana.secretKeyFile = "/run/secrets/grafana-secret-key";
#   };
{ config, lib, pkgs, ... }:

let
  inherit (lib) filter hasSuffix literalExpression mapAttrsToList mkEnableOption mkIf mkOption optional optionals types;

  cfg = config.services.panther-monitoring;
  secrets = import ./secrets.nix { inherit lib; };
  # Fleet mode (./fleet.nix, docs/fleet.md): where the series live.
  store = import ./fleet-store.nix { inherit lib cfg; };

  # Every rule file of rules/prometheus (the promtool tests under
  # rules/prometheus/tests are not rule files).
  rulesDir = ../rules/prometheus;
  ruleFiles = map (f: rulesDir + "/${f}")
    (filter (hasSuffix ".rules.yml") (builtins.attrNames (builtins.readDir rulesDir)));
  # Optional: node_exporter's series recorded from panther ones (docs/migrating.md).
  nodeExporterCompatRules = rulesDir + "/optional/node-exporter-compat.rules.yml";

  # Only the dashboards' JSON, not the Go that generates them. builtins.path
  # rather than lib.fileset, whose builtins.readFileType needs Nix 2.14 (a
  # host still on an older Nix, or Debian's 2.8 that the tests run, could not
  # evaluate the module).
  dashboards = builtins.path {
    name = "pantheros-dashboards";
    path = ../dashboards/grafana;
    filter = path: type: type == "directory" || lib.hasSuffix ".json" path;
  };

  # Secrets reach Alertmanager as systemd credentials: the files named by
  # the options stay where they are (never copied to the Nix store) and
  # systemd hands the service private copies here.
  credDir = "/run/credentials/alertmanager.service";
  routingKeyPath = "${credDir}/pagerduty-routing-key";
  chatUrlPath = "${credDir}/chat-webhook-url";
  smtpPasswordPath = "${credDir}/smtp-password";
  chatEnabled = cfg.warnings.chat.webhookUrlFile != null;
  emailEnabled = cfg.warnings.email.to != null;
  credentials =
    [ "pagerduty-routing-key:${toString cfg.pagerduty.routingKeyFile}" ]
    ++ optional chatEnabled "chat-webhook-url:${toString cfg.warnings.chat.webhookUrlFile}"
    ++ optional (emailEnabled && cfg.warnings.email.passwordFile != null) "smtp-password:${toString cfg.warnings.email.passwordFile}";

  # rules/alertmanager/alertmanager.yml is the route tree (the policy by
  # role, inhibitions); only the secret files and the warnings notifier
  # change. The notifier is the block between its BEGIN and END lines: the
  # example's chat webhook (its URL file swapped for the credential) when
  # warnings.chat is set, e-mail when warnings.email is set, else nothing.
  exampleKeyPath = "/run/secrets/alertmanager/pagerduty-routing-key";
  exampleChatPath = "/run/secrets/alertmanager/chat-webhook-url";
  exampleConfig = builtins.readFile ../rules/alertmanager/alertmanager.yml;
  splitOnce = sep: str:
    let parts = builtins.split sep str;
    in if builtins.length parts != 3
      then throw "rules/alertmanager/alertmanager.yml must hold '${sep}' exactly once; update nixos/monitoring.nix"
      else { before = builtins.elemAt parts 0; after = builtins.elemAt parts 2; };
  atBegin = splitOnce "    # BEGIN warnings notifier\n" exampleConfig;
  atEnd = splitOnce "    # END warnings notifier\n" atBegin.after;
  exampleChat = (splitOnce "    # E-mail instead" atEnd.before).before;
  email = cfg.warnings.email;
  emailConfig = builtins.toJSON ([ ({
    inherit (email) to from smarthost;
    send_resolved = true;
  } // lib.optionalAttrs (email.username != null) { auth_username = email.username; }
    // lib.optionalAttrs (email.passwordFile != null) { auth_password_file = smtpPasswordPath; }) ]);
  notifier =
    (if chatEnabled then builtins.replaceStrings [ exampleChatPath ] [ chatUrlPath ] exampleChat else "")
    + (if emailEnabled then "    email_configs: ${emailConfig}\n" else "");
  withNotifier = atBegin.before + notifier + atEnd.after;
  alertmanagerConfig =
    if lib.hasInfix "routing_key_file: ${exampleKeyPath}" exampleConfig && lib.hasInfix "api_url_file: ${exampleChatPath}" exampleChat
    then builtins.replaceStrings [ exampleKeyPath ] [ routingKeyPath ] withNotifier
    else throw "rules/alertmanager/alertmanager.yml no longer has routing_key_file: ${exampleKeyPath} and api_url_file: ${exampleChatPath}; update nixos/monitoring.nix";

  # One static config per host: its address, and the host name and role as
  # target labels (every series and alert of the host carries them); a
  # workstation is scraped less often (fewer wake-ups on battery). A host
  # that pushes (./fleet.nix) is not scraped.
  pulled = lib.filterAttrs (_: h: !(h.push or false)) cfg.hosts;
  staticConfigs = mapAttrsToList (name: h: {
    targets = [ h.address ];
    labels = { instance = name; role = h.role; }
      // lib.optionalAttrs (h.role == "workstation" && cfg.workstationScrapeInterval != cfg.scrapeInterval) {
        __scrape_interval__ = cfg.workstationScrapeInterval;
      };
  }) (lib.filterAttrs (_: h: h.address or null != null) pulled); # the rest fail an assertion
in
{
  options.services.panther-monitoring = {
    enable = mkEnableOption "the pantherOS monitoring server (Prometheus, Alertmanager, Grafana)";

    hosts = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          address = mkOption {
            type = types.nullOr types.str;
            default = null;
            example = "yoga.lan:9567";
            description = "host:port of the host's panther-exporter (not needed when it pushes).";
          };
          push = mkOption {
            type = types.bool;
            default = false;
            description = ''
              The host pushes its series through vmagent
              (services.panther-exporter.push on the host, docs/fleet.md)
              instead of being scraped: it is left out of the scrape job,
              and fleet mode (services.panther-monitoring.fleet) is on.
            '';
          };
          role = mkOption {
            type = types.enum [ "server" "workstation" ];
            example = "workstation";
            description = ''
              The host's role, a target label of all its series: a server's
              critical alerts page, a workstation's go to the warnings
              notifier, and a workstation that is off or asleep never pages
              (docs/runbooks.md, "Alert policy by role"). Match
              services.panther-exporter.role on the host.
            '';
          };
        };
      });
      default = { };
      example = literalExpression ''
        {
          hetzner-vps = { address = "hetzner-vps.lan:9567"; role = "server"; };
          yoga = { address = "[fd00::2]:9567"; role = "workstation"; };
        }
      '';
      description = ''
        panther-exporter targets of the Prometheus job `panther`, by host name
        (the `instance` label). The rules do not depend on the job's name.
      '';
    };

    scrapeInterval = mkOption {
      type = types.str;
      default = "15s";
      description = "Scrape interval of the `panther` job (servers).";
    };

    workstationScrapeInterval = mkOption {
      type = types.str;
      default = "60s";
      description = ''
        Scrape interval of the workstations (the `__scrape_interval__` target
        label): fewer wake-ups on battery; every range in the rules spans at
        least 5 minutes, so 60s still gives each one several samples.
      '';
    };

    warnings = {
      chat.webhookUrlFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/chat-webhook-url";
        description = ''
          File holding the URL of a chat's incoming webhook in Slack's format
          (Slack, Mattermost, Rocket.Chat), where warnings and workstations'
          critical alerts are posted. Outside the Nix store: the URL is a
          secret; Alertmanager reads it through LoadCredential.
        '';
      };
      email = {
        to = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "ops@example.org";
          description = "Send warnings and workstations' critical alerts by e-mail to this address; null sends none.";
        };
        from = mkOption {
          type = types.str;
          default = "alertmanager@localhost";
          description = "Sender address of the warning e-mails.";
        };
        smarthost = mkOption {
          type = types.str;
          default = "localhost:25";
          example = "smtp.example.org:587";
          description = "SMTP server (host:port).";
        };
        username = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "SMTP user name; null for no authentication.";
        };
        passwordFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/run/secrets/smtp-password";
          description = "File holding the SMTP password, outside the Nix store (read through LoadCredential).";
        };
      };
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
      (secrets.assertion "services.panther-monitoring.warnings.chat.webhookUrlFile" cfg.warnings.chat.webhookUrlFile)
      (secrets.assertion "services.panther-monitoring.warnings.email.passwordFile" cfg.warnings.email.passwordFile)
      {
        # NixOS 26.05's grafana.nix dropped the default secret_key and fails
        # without one; say here which option gives it.
        assertion = !cfg.grafana.enable || cfg.grafana.secretKeyFile != null
          || config.services.grafana.settings.security.secret_key != null;
        message = "services.panther-monitoring.grafana.secretKeyFile must be set: Grafana has no default secret_key (NixOS 26.05 and later). Give the file a secret manager writes (e.g. config.age.secrets.grafana-secret-key.path), or set services.grafana.settings.security.secret_key yourself.";
      }
      {
        assertion = builtins.all (h: h.address or null != null) (builtins.attrValues pulled);
        message = "services.panther-monitoring.hosts: a host that does not push needs an address (host:port of its exporter): ${toString (builtins.attrNames (lib.filterAttrs (_: h: h.address or null == null) pulled))}.";
      }
    ];

    warnings = optional (cfg.pagerduty.routingKeyFile != null && !chatEnabled && !emailEnabled)
      "services.panther-monitoring: no warnings notifier (warnings.chat or warnings.email): warnings and workstations' critical alerts reach nobody.";

    services.prometheus = {
      enable = true;
      # In fleet mode vmalert evaluates the same files against the store
      # (./fleet.nix); Prometheus only scrapes the pull hosts and writes
      # their series there, so each alert is raised once.
      ruleFiles = if store.on then [ ] else ruleFiles ++ optional cfg.nodeExporterCompat nodeExporterCompatRules;
      remoteWrite = mkIf store.on [{ url = store.writeUrl; }];
      scrapeConfigs = [
        ({
          job_name = "panther";
          scrape_interval = cfg.scrapeInterval;
          static_configs = staticConfigs;
        } // cfg.scrapeConfig)
      ];
      alertmanagers = mkIf (cfg.pagerduty.routingKeyFile != null) [{
        static_configs = [{ targets = [ "127.0.0.1:${toString config.services.prometheus.alertmanager.port}" ]; }];
      }];

      alertmanager = mkIf (cfg.pagerduty.routingKeyFile != null) {
        enable = true;
        # nixpkgs runs envsubst over the file before Alertmanager reads it,
        # where $ must be written $$ to stay a $ (Alertmanager templates
        # use $ for variables).
        configText = builtins.replaceStrings [ "$" ] [ "$$" ] alertmanagerConfig;
      };
    };

    systemd.services.alertmanager.serviceConfig.LoadCredential =
      mkIf (cfg.pagerduty.routingKeyFile != null) credentials;

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
      # Only valid paths (secrets.nix), so that a bad one fails the
      # assertion above and is never written into grafana.ini.
      settings.security.secret_key = mkIf (cfg.grafana.secretKeyFile != null && secrets.valid cfg.grafana.secretKeyFile) "$__file{${toString cfg.grafana.secretKeyFile}}";
      settings.security.admin_password = mkIf (cfg.grafana.adminPasswordFile != null && secrets.valid cfg.grafana.adminPasswordFile) "$__file{${toString cfg.grafana.adminPasswordFile}}";
      provision = {
        enable = true;
        # The dashboards choose their data source with the $datasource
        # variable; this one is the default.
        datasources.settings.datasources = [{
          name = "Prometheus";
          type = "prometheus";
          # In fleet mode the store, which holds every host (VictoriaMetrics
          # answers the Prometheus query API).
          # (A store without queryUrl fails fleet.nix's assertion.)
          url = if store.on && store.queryUrl != null then store.queryUrl else "http://127.0.0.1:${toString config.services.prometheus.port}";
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
