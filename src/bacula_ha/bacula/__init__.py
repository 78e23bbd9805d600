"""What the agents know of Bacula: configuration, console, the shared daemon lifecycle."""
