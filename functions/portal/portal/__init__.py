"""The tenant portal: server-rendered pages over the public API, for one tenant per session."""
