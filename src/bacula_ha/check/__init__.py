"""`bacula-ha check`: the Bacula configuration that failover needs, read with Bacula's parsers."""
