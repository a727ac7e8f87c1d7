"""Grafana provisioning for a construction bureau's sitewatch dashboards, generated from code (generate.py)."""
