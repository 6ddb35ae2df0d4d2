"""The local twin of EC2: a moto server for the API and systemd-nspawn containers as instance bodies."""
