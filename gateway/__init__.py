"""sitewatch gateway: acquisition, processing and delivery of site sensor data."""

__version__ = "0.1.0"
