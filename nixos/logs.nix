# Logs of a pantherOS host, services.panther-logs (imported by ./module.nix):
# ship the journal to the monitoring host's VictoriaLogs with
# systemd-journal-upload (nixpkgs' services.journald.upload), with the host
# name and role as fields of every entry; the Datadog Agent's journald logs
# integration (./datadog.nix, whose Agent is tagged with host and role)
# where the Agent runs; and a
# warning on an impermanence host whose journal is not persisted.
#
#   services.panther-logs.upload = {
#     enable = true;
#     url = "http://monitor.lan:9428";   # services.panther-monitoring.logs on that host
#     role = "server";
#   };
{ config, lib, ... }:

let
  inherit (lib) any attrValues concatMap hasPrefix literalExpression mkDefault mkIf mkMerge mkOption optional types;

  cfg = config.services.panther-logs;

  # systemd-journal-upload appends "/upload" to whatever URL it is given;
  # VictoriaLogs' endpoint is /insert/journald/upload and takes extra
  # fields as a query argument, so the query ends in an empty argument
  # that swallows the appended path. e2e/journal_helpers_test.go ships with
  # exactly this URL.
  uploadURL = "${cfg.upload.url}/insert/journald/upload?extra_fields=host=${cfg.hostName},role=${cfg.role}&_=";

  # impermanence (github.com/nix-community/impermanence): the directories
  # kept across reboots. environment.persistence does not exist without it.
  persistence = config.environment.persistence or { };
  persisted = concatMap
    (p: map (d: if builtins.isString d then d else d.directory) (p.directories or [ ]))
    (attrValues persistence);
  # A directory is kept when it or a parent is persisted, or is a file
  # system of its own (a /var/log subvolume mounted from persistent storage).
  keeps = dir: any (d: d == dir || hasPrefix "${d}/" dir) persisted
    || builtins.elem dir (builtins.attrNames (config.fileSystems or { }));
  journalKept = keeps "/var/log/journal" || keeps "/var/log" || keeps "/var";
in
{
  options.services.panther-logs = {
    hostName = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = ''
        The `host` field of every shipped entry and the `host` tag of the
        Datadog logs. The dashboards' links from a host's metrics to its
        logs match it against the `instance` label without the port, so
        it should be the name Prometheus scrapes the host by.
      '';
    };

    role = mkOption {
      type = types.enum [ "server" "workstation" ];
      default = config.services.panther-exporter.role or "server";
      defaultText = literalExpression ''config.services.panther-exporter.role or "server"'';
      description = "The `role` field of every shipped entry and the `role` tag of the Datadog logs.";
    };

    upload = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Ship this host's journal to VictoriaLogs with systemd-journal-upload.";
      };
      url = mkOption {
        type = types.str;
        default = "";
        example = "http://monitor.lan:9428";
        description = "Base URL of the VictoriaLogs that receives the journal (no path).";
      };
      restartSec = mkOption {
        type = types.str;
        default = "10s";
        description = ''
          How long systemd-journal-upload waits before it tries again after
          the store was unreachable. It resumes from its saved cursor, so an
          outage loses nothing; the unit gets no start limit so that a long
          outage does not leave it failed.
        '';
      };
    };

    datadog.enable = mkOption {
      type = types.bool;
      default = config.services.panther-exporter.datadog.agent.enable or false;
      defaultText = literalExpression "config.services.panther-exporter.datadog.agent.enable";
      description = ''
        Ship the journal to Datadog Logs where this host runs the Datadog
        Agent: turns on the Agent module's journald integration
        (services.panther-exporter.datadog.agent.logs.enable, ./datadog.nix),
        whose Agent carries the host's name and role as tags.
      '';
    };

    warnUnpersistedJournal = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Warn on an impermanence host (environment.persistence set) that
        keeps neither /var/log/journal nor a parent across reboots: the
        logs of the boot that failed would be gone.
      '';
    };
  };

  config = mkMerge [
    (mkIf cfg.upload.enable {
      assertions = [{
        assertion = cfg.upload.url != "" && builtins.match "https?://[^/?]+" cfg.upload.url != null;
        message = "services.panther-logs.upload.url must be a base URL such as http://monitor.lan:9428 (scheme, host, port; no path).";
      }];
      services.journald.upload = {
        enable = true;
        settings.Upload.URL = uploadURL;
      };
      systemd.services.systemd-journal-upload = {
        # nixpkgs' journald-upload.nix sets RestartSec = "3sec"; this
        # option replaces it (a second plain definition would be a conflict).
        serviceConfig.RestartSec = lib.mkForce cfg.upload.restartSec;
        unitConfig.StartLimitIntervalSec = 0;
      };
    })

    (mkIf cfg.datadog.enable {
      # ./datadog.nix writes the Agent's journald integration, logs_enabled
      # and the systemd-journal group; its Agent has the tags role:ROLE and
      # instance:HOST, which Datadog puts on the host's logs too.
      services.panther-exporter.datadog.agent.logs.enable = mkDefault true;
    })

    {
      warnings = optional (cfg.warnUnpersistedJournal && persistence != { } && !journalKept)
        "services.panther-logs: environment.persistence is set but keeps neither /var/log/journal nor /var/log: the journal of a boot is lost at the next reboot. Add \"/var/log/journal\" to environment.persistence.<dir>.directories.";
    }
  ];
}
