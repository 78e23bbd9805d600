"""The OCF side of every agent: exit codes, environment, meta-data, runner, processes."""
