# hetzner-vps: a server with Podman and the Datadog Agent (its API key from
# 1Password through OpNix), scraped by the monitoring host, journal shipped.
{ ... }:
{
  networking.hostName = "hetzner-vps";
  fileSystems."/" = { device = "/dev/sda1"; fsType = "btrfs"; options = [ "subvol=root" ]; };
  virtualisation.podman.enable = true;
  nix.gc = { automatic = true; options = "--delete-older-than 30d"; };

  services.panther-exporter = {
    enable = true;
    role = "server";
    openFirewall = true;
    ipAddressAllow = [ "192.0.2.20" ];
    datadog.agent = {
      enable = true;
      apiKeyFile = "/run/opnix/secrets/datadog-api-key";
      site = "datadoghq.eu";
      tags = [ "env:prod" "provider:hetzner" ];
    };
  };
  services.panther-logs.upload = { enable = true; url = "http://ovh-cloud.lan:9428"; };
}
