"""The test kit that tests and benchmarks share; never shipped (not in the wheel nor the .deb).

`testkit.sandbox` starts throwaway real servers (PostgreSQL, MariaDB, sshd, Bacula daemons) on
loopback; `testkit.lab` runs a lab for a block and waits on it. Both import bacula_ha; nothing
under src/ imports them (tests/test_architecture.py). Importable from the checkout's top
directory: pytest puts it on sys.path (pyproject.toml), the bench scripts insert it.
"""
