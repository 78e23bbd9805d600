"""Throwaway real servers for tests and benchmarks: PostgreSQL, MariaDB, Bacula daemons."""
