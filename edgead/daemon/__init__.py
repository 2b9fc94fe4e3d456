"""The station daemon: the inspection loop and its service-manager glue (sd_notify, watchdog)."""
