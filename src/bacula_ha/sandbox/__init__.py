"""Throwaway real servers for tests and the lab: PostgreSQL, MariaDB, Bacula daemons."""
