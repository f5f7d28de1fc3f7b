"""Walking tasks, each written once for every body (see ``flyenv.tasks.base``)."""
