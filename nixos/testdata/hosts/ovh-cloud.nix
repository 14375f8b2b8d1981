# ovh-cloud: a server and the monitoring host: Prometheus scraping the
# servers, VictoriaMetrics taking the laptops' pushes, vmalert over it,
# Alertmanager paging PagerDuty and posting warnings to the chat,
# Grafana with the dashboards, VictoriaLogs holding every journal.
# Secrets from 1Password through OpNix.
{ ... }:
{
  networking.hostName = "ovh-cloud";
  fileSystems."/" = { device = "/dev/sda1"; fsType = "btrfs"; options = [ "subvol=root" ]; };
  nix.gc = { automatic = true; options = "--delete-older-than 30d"; };

  services.panther-exporter = { enable = true; role = "server"; listenAddress = "127.0.0.1"; };
  services.panther-monitoring = {
    enable = true;
    openFirewall = true;
    hosts = {
      ovh-cloud = { address = "127.0.0.1:9567"; role = "server"; };
      hetzner-vps = { address = "hetzner-vps.lan:9567"; role = "server"; };
      yoga = { push = true; role = "workstation"; };
      zephyrus = { push = true; role = "workstation"; };
    };
    pagerduty.routingKeyFile = "/run/opnix/secrets/pagerduty-routing-key";
    warnings.chat.webhookUrlFile = "/run/opnix/secrets/chat-webhook-url";
    grafana = {
      secretKeyFile = "/run/opnix/secrets/grafana-secret-key";
      adminPasswordFile = "/run/opnix/secrets/grafana-admin-password";
    };
    logs.enable = true;
  };
  services.panther-logs.upload = { enable = true; url = "http://127.0.0.1:9428"; };
}
