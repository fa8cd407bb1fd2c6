"""Text tasks: the GLUE benchmark (file readers in :mod:`.glue_formats`, metrics in :mod:`.text_metrics`)."""
