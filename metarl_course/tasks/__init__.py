"""Task distributions and the environments the course trains on."""
