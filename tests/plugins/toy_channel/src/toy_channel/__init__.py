"""A toy payment protocol for payhub, registered through the ``payhub.channels`` entry point."""
