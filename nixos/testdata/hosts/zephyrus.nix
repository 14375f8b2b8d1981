# zephyrus also reads its NVMe disk's health.
import ./workstation.nix {
  name = "zephyrus";
  extra.services.panther-exporter.diskHealth.enable = true;
}
