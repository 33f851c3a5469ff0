"""Payment hub core: domain, storage, channels, crypto, services. Imports no web framework."""
