"""bacula-ha: Pacemaker resource agents, a configuration generator and a lab for Bacula."""

__version__ = "0.1.0"
