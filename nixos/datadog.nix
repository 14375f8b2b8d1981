# The Datadog Agent of a pantherOS host, under
# services.panther-exporter.datadog.agent: nixpkgs' services.datadog-agent
# (nixos/modules/services/monitoring/datadog-agent.nix) configured with the
# API key from a secret manager's file, the site, the host name, the host's
# role and name as tags, and one of the two routes for panther-exporter's
# metrics (docs/datadog.md):
#   - "dogstatsd" (default): the Agent listens for DogStatsD on a unix socket
#     in /run/datadog (0750 datadog:datadog; the socket 0720), and the
#     exporter, in the datadog group, sends to it (module.nix points
#     --datadog.address there);
#   - "openmetrics": the Agent's OpenMetrics check scrapes /metrics, with
#     the metric names of the DogStatsD route (datadog-openmetrics.json,
#     generated from the catalog: `go test ./nixos -run TestOpenMetricsList
#     -update-openmetrics`).
# With logs.enable the Agent also ships the journal (journald integration).
# Imported by module.nix.
#
#   services.panther-exporter.datadog.agent = {
#     enable = true;
#     apiKeyFile = config.services.onepassword-secrets.secretPaths.datadogApiKey;
#     site = "datadoghq.eu";
#   };
{ config, lib, pkgs, ... }:

let
  inherit (lib) hasInfix literalExpression mkIf mkOption optional optionalAttrs types;

  cfg = config.services.panther-exporter;
  agent = cfg.datadog.agent;
  secrets = import ./secrets.nix { inherit lib; };

  socketDir = "/run/datadog";
  dogstatsd = agent.route == "dogstatsd";

  # The host's role (services.panther-exporter.role, the host roles issue),
  # when the module that defines it is there.
  role = cfg.role or null;

  tags = optional (role != null) "role:${role}" ++ [ "instance:${agent.hostname}" ] ++ agent.tags;

  # The exporter's own address, as the check on the same host reaches it.
  scrapeHost =
    if cfg.listenAddress == "" || cfg.listenAddress == "0.0.0.0" then "127.0.0.1"
    else if cfg.listenAddress == "::" then "[::1]"
    else if hasInfix ":" cfg.listenAddress then "[${cfg.listenAddress}]"
    else cfg.listenAddress;

  openmetricsCheck = {
    init_config = { };
    instances = [{
      openmetrics_endpoint = "http://${scrapeHost}:${toString cfg.port}/metrics";
      namespace = "panther";
      metrics = (builtins.fromJSON (builtins.readFile ./datadog-openmetrics.json)).metrics ++ agent.openmetrics.extraMetrics;
      # The exporter bounds each collector itself (--collector.timeout 5s).
      timeout = 10;
    }];
  };

  journaldCheck = {
    logs = [ ({ type = "journald"; } // optionalAttrs (agent.logs.units != [ ]) { include_units = agent.logs.units; }) ];
  };
in
{
  options.services.panther-exporter.datadog.agent = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run the Datadog Agent (nixpkgs' services.datadog-agent) for this
        host's metrics, configured for pantherOS.
      '';
    };

    apiKeyFile = mkOption {
      type = types.nullOr (types.either types.str types.path);
      default = null;
      example = literalExpression "config.services.onepassword-secrets.secretPaths.datadogApiKey";
      description = ''
        File holding the Datadog API key, written at run time by a secret
        manager (OpNix, agenix, sops-nix) and readable by the datadog user.
        A literal key or a path in the Nix store is refused.
      '';
    };

    site = mkOption {
      type = types.str;
      default = "datadoghq.com";
      example = "datadoghq.eu";
      description = "The Datadog site of the organisation.";
    };

    hostname = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "Host name the Agent reports (the host tag); also the `instance` tag.";
    };

    tags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "env:prod" ];
      description = "More host tags (key:value) besides `role` and `instance`.";
    };

    route = mkOption {
      type = types.enum [ "dogstatsd" "openmetrics" ];
      default = "dogstatsd";
      description = ''
        How panther-exporter's metrics reach the Agent (docs/datadog.md):
        "dogstatsd", the exporter sends them to the Agent's unix socket; or
        "openmetrics", the Agent's OpenMetrics check scrapes /metrics.
      '';
    };

    socket = mkOption {
      type = types.str;
      default = "${socketDir}/dsd.socket";
      readOnly = true;
      description = "The Agent's DogStatsD socket (route dogstatsd), in its 0750 runtime directory.";
    };

    openmetrics.extraMetrics = mkOption {
      type = types.listOf (types.either types.str (types.attrsOf types.str));
      default = [ ];
      example = [ { backup_runs = "backup.runs"; } ];
      description = ''
        More entries of the OpenMetrics check's metrics list (route
        openmetrics), e.g. a batch job's textfile metrics: a name (or
        regex), or { PROMETHEUS_NAME = "datadog.name"; } (the namespace
        "panther." is put in front).
      '';
    };

    logs = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Ship the journal to Datadog Logs (the Agent's journald
          integration). The hook for the host's log settings: a logs module
          sets it, e.g. `services.panther-exporter.datadog.agent.logs.enable
          = lib.mkDefault true;`.
        '';
      };
      units = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "sshd.service" "podman.service" ];
        description = "Only these units' entries (include_units); empty ships the whole journal.";
      };
    };
  };

  config = mkIf (cfg.enable && agent.enable) {
    assertions = [
      (secrets.assertion "services.panther-exporter.datadog.agent.apiKeyFile" agent.apiKeyFile)
      {
        assertion = agent.apiKeyFile != null;
        message = "services.panther-exporter.datadog.agent.apiKeyFile must be set: the Agent needs the API key (from a secret manager's file).";
      }
      {
        assertion = dogstatsd || cfg.webConfigFile == null;
        message = "services.panther-exporter.datadog.agent.route = \"openmetrics\" scrapes plain HTTP; with webConfigFile (TLS, basic auth) use the dogstatsd route.";
      }
    ];

    services.datadog-agent = {
      enable = true;
      # Only a valid path (see secrets.nix: nixpkgs' types.path would print a
      # literal key in its error); toString: a Nix path (refused above) is
      # never copied into the store. Unset, nixpkgs has no default: the
      # assertion above names the option.
      apiKeyFile = mkIf (agent.apiKeyFile != null && secrets.valid agent.apiKeyFile) (toString agent.apiKeyFile);
      inherit (agent) site hostname;
      inherit tags;
      # Merged into datadog.yaml. (extraConfig is types.attrs: definitions
      # from several modules are merged shallowly, so only keys this module
      # means to set are set; logs_enabled is left alone when logs are off.)
      extraConfig = optionalAttrs dogstatsd {
        dogstatsd_socket = agent.socket;
      } // optionalAttrs agent.logs.enable {
        logs_enabled = true;
        # Where the Agent keeps its place in the journal (its default,
        # /opt/datadog-agent/run, does not exist on NixOS).
        logs_config.run_path = "/var/lib/datadog-agent";
      };
      # conf.d/NAME.d/conf.yaml
      checks = optionalAttrs (!dogstatsd) { openmetrics = openmetricsCheck; }
        // optionalAttrs agent.logs.enable { journald = journaldCheck; };
    };

    # Reading the system journal takes the systemd-journal group.
    users.users.datadog.extraGroups = optional agent.logs.enable "systemd-journal";

    systemd.services.datadog-agent.serviceConfig = {
      # /run/datadog, datadog:datadog 0750: only the datadog group (the
      # exporter's supplementary group) reaches the socket.
      RuntimeDirectory = "datadog";
      RuntimeDirectoryMode = "0750";
      StateDirectory = mkIf agent.logs.enable "datadog-agent";
      StateDirectoryMode = mkIf agent.logs.enable "0750";
      # The Agent makes its socket 0722; take "others" off it. "-": a
      # socket that never appears is logged, not a reason to stop the Agent.
      ExecStartPost = mkIf dogstatsd [ "-${pkgs.runtimeShell} ${./datadog-socket-mode.sh} ${agent.socket}" ];
    };
  };
}
