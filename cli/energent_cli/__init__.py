"""energent: the operators command line."""
