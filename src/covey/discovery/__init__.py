"""Finding nodes: the DNS-SD TXT codec, the announcer, the browser, the directory and health checks."""
