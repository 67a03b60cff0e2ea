"""Process plumbing shared by the services: settings sections, log lines, runtime set-up."""
