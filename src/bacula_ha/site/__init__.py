"""The site description: TOML in, validated frozen dataclasses out, all problems collected first."""

# Which module answers which question (nothing is re-exported here: a command that only needs
# the errors or the model does not load the reader):
#   model       the names' rules, the defaults, the dataclasses (Site, Director, ...), is_ip
#   errors      Problem, SiteError (every problem with its file, line and field), secret values
#   locate      a field path back to the line of the TOML that set it
#   parse       load_site / parse_site: the file, the TOML, the top-level tables
#   reader      typed access to the raw TOML that records a problem instead of raising
#   sections    nodes, remote nodes, [alerts], [connectivity], [quorum_device]
#   components  directors, catalogs, storage and file daemons, and their shared fields
#   rules       the checks that need the whole site (names, addresses, devices used twice)
#   agents      our agents' parameters from their meta-data; ping's and the fence heuristics'
