# NixOS VM test of panther-exporter, in the style of nixpkgs'
# nixos/tests/prometheus-exporters.nix: the unit starts, the port opens,
# /metrics has the contract metrics (a Btrfs disk and Podman are set up so
# that their collectors have something to report), and Prometheus on a
# second node scrapes it with the repository's rules loaded.
#
#   nix build .#checks.x86_64-linux.vm-test
{ pkgs, self }:

pkgs.testers.runNixOSTest {
  name = "panther-exporter";

  nodes.host = { pkgs, nodes, ... }: {
    imports = [ self.nixosModules.default ];
    virtualisation.emptyDiskImages = [ 512 ];
    virtualisation.podman.enable = true;
    # The exporter reaches the rootful API socket through group "podman".
    users.groups.podman = { };
    systemd.sockets.podman.socketConfig = { SocketGroup = "podman"; SocketMode = "0660"; };
    environment.systemPackages = [ pkgs.btrfs-progs ];
    services.panther-exporter = {
      enable = true;
      role = "server";
      package = self.packages.${pkgs.stdenv.hostPlatform.system}.panther-exporter;
      openFirewall = true;
      podman.sockets.system = "unix:///run/podman/podman.sock";
      textfileDirectory = "/var/lib/panther-textfile";
      extraFlags = [ "--collector.btrfs.subvolume-interval=1s" ];
      # The address filter: only the monitor (and localhost) may scrape;
      # Prometheus's scrape below goes through it.
      ipAddressAllow = [ nodes.monitor.networking.primaryIPAddress ];
    };
    systemd.tmpfiles.rules = [ "d /var/lib/panther-textfile 0755 root root -" ];
  };

  nodes.monitor = { pkgs, ... }: {
    imports = [ self.nixosModules.default ];
    environment.systemPackages = [ pkgs.jq ];
    services.panther-monitoring = {
      enable = true;
      hosts.host = { address = "host:9567"; role = "server"; };
      scrapeInterval = "2s";
      # A test key in the store is fine here; real ones never are.
      pagerduty.routingKeyFile = "/etc/pagerduty-routing-key";
      grafana.secretKeyFile = "/etc/grafana-secret-key";
    };
    environment.etc."pagerduty-routing-key".text = "0123456789abcdef0123456789abcdef";
    environment.etc."grafana-secret-key".text = "vm-test-only";
  };

  testScript = ''
    import json

    start_all()

    with subtest("the exporter runs sandboxed"):
        host.wait_for_unit("panther-exporter.service")
        host.wait_for_open_port(9567)
        host.succeed("systemctl show -p DynamicUser panther-exporter.service | grep -x DynamicUser=yes")
        host.succeed("systemctl show -p IPAddressDeny panther-exporter.service | grep -F 0.0.0.0/0")
        print(host.succeed("systemd-analyze security panther-exporter.service | tail -1"))

    with subtest("collectors see a Btrfs file system and Podman"):
        host.succeed("mkfs.btrfs -q /dev/vdb && mkdir -p /mnt/b && mount /dev/vdb /mnt/b")
        host.succeed("btrfs subvolume create /mnt/b/data && btrfs subvolume snapshot -r /mnt/b/data /mnt/b/data.snap")
        host.wait_for_unit("podman.socket")

    contract = [
        "panther_exporter_build_info",
        "panther_scrape_collector_success",
        "panther_cpu_seconds_total",
        "panther_memory_available_bytes",
        "panther_filesystem_size_bytes",
        "panther_boot_timestamp_seconds",
        "panther_btrfs_info",
        "panther_btrfs_size_bytes",
        "panther_btrfs_subvolumes",
        "panther_podman_up",
        "panther_boot_stage_duration_seconds",
        "panther_systemd_units",
        "panther_nix_store_paths",
        "panther_nixos_generations",
    ]
    with subtest("/metrics has the contract metrics"):
        for m in contract:
            host.wait_until_succeeds(
                f"curl -sSf http://localhost:9567/metrics | grep -E '^{m}[{{ ]'", timeout=60
            )
        host.succeed("curl -sSf http://localhost:9567/metrics | grep -E '^panther_podman_up[{]socket=\"system\"[}] 1'")
        host.succeed("curl -sSf http://localhost:9567/metrics | grep -E '^panther_btrfs_subvolume_scan_success[{].*[}] 1'")
        host.fail("curl -sSf http://localhost:9567/metrics | grep -E '^panther_scrape_collector_success[{]collector=\"(system|btrfs|podman|nix)\"[}] 0'")

    with subtest("Prometheus on another node scrapes it"):
        monitor.wait_for_unit("prometheus.service")
        monitor.wait_for_open_port(9090)
        monitor.wait_until_succeeds(
            "curl -sSf 'http://localhost:9090/api/v1/query?query=up%7Bjob%3D%22panther%22%7D' "
            + "| jq -e '.data.result[0].value[1] == \"1\" and .data.result[0].metric.role == \"server\" and .data.result[0].metric.instance == \"host\"'",
            timeout=120,
        )
        monitor.wait_until_succeeds(
            "curl -sSf 'http://localhost:9090/api/v1/query?query=panther_exporter_build_info' "
            + "| jq -e '.data.result | length == 1'"
        )
        rules = json.loads(monitor.succeed("curl -sSf http://localhost:9090/api/v1/rules"))
        assert len(rules["data"]["groups"]) > 0, "no rule groups loaded"

    with subtest("Alertmanager has the routing key as a credential, Grafana the dashboards"):
        monitor.wait_for_unit("alertmanager.service")
        monitor.succeed("systemctl show -p LoadCredential alertmanager.service | grep pagerduty-routing-key")
        monitor.wait_until_succeeds("curl -sSf http://localhost:9093/-/ready")
        monitor.wait_for_unit("grafana.service")
        monitor.wait_for_open_port(3000)
        monitor.wait_until_succeeds(
            "curl -sSf 'http://admin:admin@localhost:3000/api/search?query=' | jq -e 'length > 0'"
        )
  '';
}
