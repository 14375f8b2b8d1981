# The nixpkgs (and impermanence) options that the pantherOS modules set or
# read, declared as nixpkgs declares them, so that lib.evalModules from
# ../shared/nixpkgs-lib (nixpkgs' own lib) checks the modules as a real
# NixOS evaluation would: an option nixpkgs does not declare fails, a value
# of the wrong type fails, and a definition that clashes with what nixpkgs'
# own module of that service sets fails.
#
# Each declaration follows the nixpkgs file named beside it, read at the
# commit given in nixpkgs-options.md (name, type, default where the modules
# rely on it). Only the options the modules touch are declared: an option
# of those files that no module here uses is left out. Below the options,
# `config` repeats the definitions that nixpkgs' own service modules make
# on the units and files ours change too (journald-upload's RestartSec,
# datadog-agent's unit, nix-gc's script, grafana's and alertmanager's
# assertions): the places where a priority clash would show.
{ lib, config, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types;

  # nixos/lib/systemd-lib.nix
  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";

  # nixos/lib/systemd-unit-options.nix: list values of a unit option are
  # concatenated; any other value must be the same in every definition.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs;
      in
      if lib.isList (lib.head defs').value
      then lib.concatMap (def:
        if builtins.typeOf def.value == "list" then def.value
        else throw "The definitions for systemd unit options should be either all lists, representing repeatable options, or all non-lists, but for the option ${lib.showOption loc}, the definitions are a mix of list and non-list ${lib.options.showDefs defs'}") defs'
      else lib.mergeEqualOption loc defs';
  };
  # checkService (assertValueOneOf "Restart" ...), as a type check.
  restartValues = [ "no" "on-success" "on-failure" "on-abnormal" "on-abort" "always" ];
  checkService = attrs: !(attrs ? Restart) || builtins.elem attrs.Restart restartValues;

  # A stand-in for nixpkgs' makeJobScript (a store path named after the unit).
  jobScript = name: "/nix/store/jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj-unit-script-${name}";

  # nixos/lib/systemd-unit-options.nix: commonUnitOptions,
  # stage2CommonUnitOptions, serviceOptions, stage2ServiceOptions (the
  # options the modules use), with serviceOptions' script -> ExecStart.
  serviceType = types.submodule ({ name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; };
      description = mkOption { type = types.singleLineStr; default = ""; };
      documentation = mkOption { type = types.listOf types.str; default = [ ]; };
      requires = mkOption { type = types.listOf unitNameType; default = [ ]; };
      wants = mkOption { type = types.listOf unitNameType; default = [ ]; };
      after = mkOption { type = types.listOf unitNameType; default = [ ]; };
      before = mkOption { type = types.listOf unitNameType; default = [ ]; };
      wantedBy = mkOption { type = types.listOf unitNameType; default = [ ]; };
      requiredBy = mkOption { type = types.listOf unitNameType; default = [ ]; };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      startLimitBurst = mkOption { type = types.int; };
      startLimitIntervalSec = mkOption { type = types.int; };
      restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      reloadTriggers = mkOption { type = types.listOf unitOption; default = [ ]; };
      environment = mkOption { type = with types; attrsOf (nullOr (oneOf [ str path package ])); default = { }; };
      path = mkOption { type = with types; listOf (oneOf [ package str ]); default = [ ]; };
      serviceConfig = mkOption { type = types.addCheck (types.attrsOf unitOption) checkService; default = { }; };
      script = mkOption { type = types.lines; default = ""; };
      scriptArgs = mkOption { type = types.str; default = ""; };
      preStart = mkOption { type = types.lines; default = ""; };
      postStart = mkOption { type = types.lines; default = ""; };
      restartIfChanged = mkOption { type = types.bool; default = true; };
      reloadIfChanged = mkOption { type = types.bool; default = false; };
      startAt = mkOption {
        type = with types; either str (listOf str);
        default = [ ];
        apply = v: if lib.isList v then v else [ v ];
      };
    };
    config = mkMerge [
      (mkIf (config.script != "") { serviceConfig.ExecStart = jobScript "${name}-start" + " " + config.scriptArgs; })
      (mkIf (config.preStart != "") { serviceConfig.ExecStartPre = [ (jobScript "${name}-pre-start") ]; })
      (mkIf (config.postStart != "") { serviceConfig.ExecStartPost = [ (jobScript "${name}-post-start") ]; })
    ];
  });

  # nixos/modules/services/monitoring/prometheus/default.nix: mkOpt,
  # promTypes.{basic_auth,tls_config,static_config,scrape_config,remote_write}.
  mkOpt = type: mkOption { type = types.nullOr type; default = null; };
  basicAuth = types.submodule {
    options = {
      username = mkOption { type = types.str; };
      password = mkOpt types.str;
      password_file = mkOpt types.str;
    };
  };
  tlsConfig = types.submodule {
    options = {
      ca_file = mkOpt types.str;
      cert_file = mkOpt types.str;
      key_file = mkOpt types.str;
      server_name = mkOpt types.str;
      insecure_skip_verify = mkOpt types.bool;
    };
  };
  staticConfig = types.submodule {
    options = {
      targets = mkOption { type = types.listOf types.str; };
      labels = mkOpt (types.attrsOf types.str);
    };
  };
  scrapeConfig = types.submodule {
    options = {
      job_name = mkOption { type = types.str; };
      scrape_interval = mkOpt types.str;
      scrape_timeout = mkOpt types.str;
      metrics_path = mkOpt types.str;
      scheme = mkOpt (types.enum [ "http" "https" ]);
      params = mkOpt (types.attrsOf (types.listOf types.str));
      honor_labels = mkOpt types.bool;
      basic_auth = mkOpt basicAuth;
      bearer_token_file = mkOpt types.str;
      tls_config = mkOpt tlsConfig;
      proxy_url = mkOpt types.str;
      static_configs = mkOpt (types.listOf staticConfig);
    };
  };
  remoteWrite = types.submodule {
    options = {
      url = mkOption { type = types.str; };
      name = mkOpt types.str;
      remote_timeout = mkOpt types.str;
      basic_auth = mkOpt basicAuth;
      tls_config = mkOpt tlsConfig;
    };
  };

  # nixos/modules/services/monitoring/grafana.nix: grafanaTypes.
  provisioningFormat = types.attrsOf types.anything; # pkgs.formats.yaml's type
  datasourceConfig = types.submodule {
    freeformType = provisioningFormat;
    options = {
      access = mkOption { type = types.enum [ "proxy" "direct" ]; default = "proxy"; };
      editable = mkOption { type = types.bool; default = false; };
      jsonData = mkOption { type = types.nullOr types.attrs; default = null; };
      name = mkOption { type = types.str; };
      secureJsonData = mkOption { type = types.nullOr types.attrs; default = null; };
      type = mkOption { type = types.str; };
      uid = mkOption { type = types.nullOr types.str; default = null; };
      url = mkOption { type = types.str; default = ""; };
    };
  };
  dashboardConfig = types.submodule {
    freeformType = provisioningFormat;
    options = {
      options.path = mkOption { type = types.path; };
      name = mkOption { type = types.str; default = "default"; };
      type = mkOption { type = types.str; default = "file"; };
    };
  };
  iniFormat = types.attrsOf (types.attrsOf types.anything); # pkgs.formats.ini's type
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption { type = types.listOf types.unspecified; internal = true; default = [ ]; };
    warnings = mkOption { type = types.listOf types.str; internal = true; default = [ ]; };
    # nixos/modules/misc/meta.nix
    meta.maintainers = mkOption { type = types.listOf types.unspecified; internal = true; default = [ ]; };

    # nixos/modules/tasks/network-interfaces.nix
    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = config.system.nixos.distroId or "nixos";
    };
    # nixos/modules/services/networking/firewall.nix
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };

    # nixos/modules/system/boot/systemd.nix, nixos/lib/systemd-types.nix
    systemd.package = mkOption { type = types.package; default = pkgs.systemd; };
    systemd.services = mkOption { type = types.attrsOf serviceType; default = { }; };
    # nixos/modules/system/boot/systemd/tmpfiles.nix
    systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; };

    # nixos/modules/config/users-groups.nix
    users.users = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          description = mkOption { type = types.passwdEntry types.str; default = ""; };
          uid = mkOption { type = with types; nullOr int; default = null; };
          group = mkOption { type = types.str; default = ""; };
          extraGroups = mkOption { type = types.listOf types.str; default = [ ]; };
          home = mkOption { type = types.passwdEntry types.path; default = "/var/empty"; };
          createHome = mkOption { type = types.bool; default = false; };
          isSystemUser = mkOption { type = types.bool; default = false; };
        };
      });
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule {
        options.gid = mkOption { type = with types; nullOr int; default = null; };
        options.members = mkOption { type = types.listOf types.str; default = [ ]; };
      });
      default = { };
    };

    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          enable = mkOption { type = types.bool; default = true; };
          target = mkOption { type = types.str; default = name; };
          text = mkOption { type = types.nullOr types.lines; default = null; };
          source = mkOption { type = types.path; };
          mode = mkOption { type = types.str; default = "symlink"; };
        };
      }));
      default = { };
    };

    # nixos/modules/tasks/filesystems.nix
    fileSystems = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          mountPoint = mkOption { type = types.nonEmptyStr; default = name; };
          device = mkOption { type = types.nullOr types.nonEmptyStr; default = null; };
          fsType = mkOption { type = types.nonEmptyStr; default = "auto"; };
          options = mkOption { type = types.nonEmptyListOf types.nonEmptyStr; default = [ "defaults" ]; };
          neededForBoot = mkOption { type = types.bool; default = false; };
        };
      }));
      default = { };
    };

    # nixos/modules/virtualisation/podman/default.nix
    virtualisation.podman.enable = mkEnableOption "podman";

    # nixos/modules/config/nix.nix, nixos/modules/services/misc/nix-gc.nix
    nix.package = mkOption { type = types.package; default = pkgs.nix; };
    nix.gc = {
      automatic = mkOption { type = types.bool; default = false; };
      dates = mkOption { type = types.singleLineStr; default = "03:15"; };
      options = mkOption { type = types.singleLineStr; default = ""; };
    };

    # nixos/modules/services/monitoring/prometheus/default.nix
    services.prometheus = {
      enable = mkEnableOption "Prometheus monitoring daemon";
      port = mkOption { type = types.port; default = 9090; };
      listenAddress = mkOption { type = types.str; default = "0.0.0.0"; };
      ruleFiles = mkOption { type = types.listOf types.path; default = [ ]; };
      scrapeConfigs = mkOption { type = types.listOf scrapeConfig; default = [ ]; };
      remoteWrite = mkOption { type = types.listOf remoteWrite; default = [ ]; };
      alertmanagers = mkOption { type = types.listOf types.attrs; default = [ ]; };
      globalConfig = mkOption { type = types.attrs; default = { }; };
      # nixos/modules/services/monitoring/prometheus/alertmanager.nix
      alertmanager = {
        enable = mkEnableOption "Prometheus Alertmanager";
        port = mkOption { type = types.port; default = 9093; };
        listenAddress = mkOption { type = types.str; default = ""; };
        configuration = mkOption { type = types.nullOr types.attrs; default = null; };
        configText = mkOption { type = types.nullOr types.lines; default = null; };
        checkConfig = mkOption { type = types.bool; default = true; };
      };
    };

    # nixos/modules/services/databases/victoriametrics.nix
    services.victoriametrics = {
      enable = mkOption { type = types.bool; default = false; };
      listenAddress = mkOption { type = types.str; default = ":8428"; };
      retentionPeriod = mkOption { type = types.nullOr types.str; default = null; };
      extraOptions = mkOption { type = types.listOf types.str; default = [ ]; };
    };

    # nixos/modules/services/databases/victorialogs.nix
    services.victorialogs = {
      enable = mkEnableOption "VictoriaLogs is an open source user-friendly database for logs from VictoriaMetrics";
      listenAddress = mkOption { type = types.str; default = ":9428"; };
      stateDir = mkOption { type = types.str; default = "victorialogs"; };
      extraOptions = mkOption { type = types.listOf types.str; default = [ ]; };
    };

    # nixos/modules/services/monitoring/grafana.nix
    services.grafana = {
      enable = mkEnableOption "grafana";
      declarativePlugins = mkOption {
        type = with types; nullOr (listOf path);
        default = null;
        apply = x: if lib.isList x then lib.unique x else x;
      };
      settings = mkOption {
        type = types.submodule {
          freeformType = iniFormat;
          options = {
            server = {
              http_addr = mkOption { type = types.str; default = "127.0.0.1"; };
              http_port = mkOption { type = types.port; default = 3000; };
              domain = mkOption { type = types.str; default = "localhost"; };
              root_url = mkOption { type = types.str; default = "%(protocol)s://%(domain)s:%(http_port)s/"; };
            };
            security = {
              admin_user = mkOption { type = types.str; default = "admin"; };
              admin_password = mkOption { type = types.str; default = "admin"; };
              secret_key = mkOption { type = types.nullOr types.str; default = null; };
            };
          };
        };
        default = { };
      };
      provision = {
        enable = mkEnableOption "provision";
        datasources.settings = mkOption {
          type = types.nullOr (types.submodule {
            options.apiVersion = mkOption { type = types.int; default = 1; };
            options.datasources = mkOption { type = types.listOf datasourceConfig; default = [ ]; };
          });
          default = null;
        };
        datasources.path = mkOption { type = types.nullOr types.path; default = null; };
        dashboards.settings = mkOption {
          type = types.nullOr (types.submodule {
            options.apiVersion = mkOption { type = types.int; default = 1; };
            options.providers = mkOption { type = types.listOf dashboardConfig; default = [ ]; };
          });
          default = null;
        };
        dashboards.path = mkOption { type = types.nullOr types.path; default = null; };
      };
    };

    # nixos/modules/services/monitoring/datadog-agent.nix
    services.datadog-agent = {
      enable = mkEnableOption "Datadog-agent v7 monitoring service";
      apiKeyFile = mkOption { type = types.path; };
      site = mkOption { type = types.nullOr types.str; default = null; };
      tags = mkOption { type = types.nullOr (types.listOf types.str); default = null; };
      hostname = mkOption { type = types.nullOr types.str; default = null; };
      extraConfig = mkOption { type = types.attrs; default = { }; };
      checks = mkOption { type = with types; attrsOf attrs; default = { }; };
    };

    # nixos/modules/system/boot/systemd/journald-upload.nix
    services.journald.upload = {
      enable = mkEnableOption "uploading the systemd journal to a remote server";
      settings = mkOption {
        type = types.submodule {
          freeformType = iniFormat; # pkgs.formats.systemd's type
          options.Upload.URL = mkOption { type = types.str; };
        };
        default = { };
      };
    };

    # github.com/nix-community/impermanence nixos.nix
    environment.persistence = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          enable = mkOption { type = types.bool; default = true; };
          persistentStoragePath = mkOption { type = types.path; default = name; };
          hideMounts = mkOption { type = types.bool; default = false; };
          directories = mkOption {
            type = types.listOf (types.coercedTo types.str (d: { directory = d; }) (types.submodule {
              options = {
                directory = mkOption { type = types.str; };
                user = mkOption { type = types.str; default = "root"; };
                group = mkOption { type = types.str; default = "root"; };
                mode = mkOption { type = types.str; default = "0755"; };
              };
            }));
            default = [ ];
          };
          files = mkOption {
            type = types.listOf (types.coercedTo types.str (f: { file = f; }) (types.submodule {
              options.file = mkOption { type = types.str; };
            }));
            default = [ ];
          };
        };
      }));
      default = { };
    };
  };

  # What nixpkgs' own modules of these services define on the same units
  # and files (read in the same files).
  config = mkMerge [
    (mkIf config.services.journald.upload.enable {
      systemd.services.systemd-journal-upload = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = { Restart = "always"; RestartSec = "3sec"; };
      };
    })
    (mkIf config.services.datadog-agent.enable {
      users.users.datadog = {
        description = "Datadog Agent User";
        group = "datadog";
        home = "/var/log/datadog/";
        createHome = true;
      };
      systemd.services.datadog-agent = {
        description = "Datadog agent monitor";
        wantedBy = [ "multi-user.target" ];
        preStart = ''
          chown -R datadog: /etc/datadog-agent
          rm -f /etc/datadog-agent/auth_token
        '';
        script = ''
          export DD_API_KEY=$(head -n 1 ${config.services.datadog-agent.apiKeyFile})
          exec /nix/store/dddddddddddddddddddddddddddddddd-datadog-agent/bin/agent run -c /etc/datadog-agent/datadog.yaml
        '';
        serviceConfig = { User = "datadog"; Group = "datadog"; Restart = "always"; RestartSec = 2; PermissionsStartOnly = true; };
      };
    })
    {
      systemd.services.nix-gc = {
        description = "Nix Garbage Collector";
        script = "exec ${config.nix.package.out}/bin/nix-collect-garbage ${config.nix.gc.options}";
        startAt = lib.optional config.nix.gc.automatic config.nix.gc.dates;
      };
    }
    (mkIf config.services.prometheus.alertmanager.enable {
      assertions = [{
        assertion = config.services.prometheus.alertmanager.configuration != null || config.services.prometheus.alertmanager.configText != null;
        message = "Can not enable alertmanager without a configuration. Set either the `configuration` or `configText` attribute.";
      }];
      systemd.services.alertmanager = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = { DynamicUser = true; Restart = "always"; StateDirectory = "alertmanager"; WorkingDirectory = "/tmp"; };
      };
    })
    (mkIf config.services.grafana.enable {
      assertions = [{
        assertion = config.services.grafana.settings.security.secret_key != null;
        message = "Grafana's secret key (services.grafana.settings.security.secret_key) doesn't have a default value anymore. Please generate your own and use a file-provider on this option!";
      }];
    })
  ];
}
