"""Device profiles: vendor Modbus devices described as data (TOML), decoded without I/O."""
