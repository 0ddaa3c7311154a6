"""One module per ``hil`` subcommand."""
