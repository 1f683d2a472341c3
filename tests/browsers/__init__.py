"""Scripts usable as `$BROWSER` in tests (each takes the URL as its one argument)."""
