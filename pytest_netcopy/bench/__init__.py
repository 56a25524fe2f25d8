"""One benchmark from open to record; the only code that runs rounds."""
